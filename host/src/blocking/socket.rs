//! `memlock:lock/socket` on blocking std sockets: each call blocks the calling thread, bounded by
//! the timeout the component passes (socket timeouts, set only when they change).

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use tokio_rustls::rustls::{ClientConnection, StreamOwned};
use wasmtime::component::Resource;

use super::bindings::memlock::lock::socket::{Host, HostConnection, SocketError, TlsSettings};
use super::state::BlockingState;
use crate::imports::socket_error;

/// Largest single read handed to the component.
const MAX_READ: usize = 64 * 1024;

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => &tls.sock,
        }
    }

    fn io(&mut self) -> &mut dyn ReadWrite {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => tls.as_mut(),
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// The resource behind the WIT `socket.connection`.
pub struct Connection {
    stream: Stream,
    /// The socket's read and write timeouts as last set: the component passes the same timeout
    /// call after call, and each change costs a system call.
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    /// Reads land here first (zeroed once per connection, as in the async host).
    read_buffer: Vec<u8>,
}

/// A timed-out blocking read or write surfaces as `WouldBlock` on Unix.
fn error(e: &io::Error) -> SocketError {
    match e.kind() {
        io::ErrorKind::WouldBlock => SocketError::TimedOut,
        _ => socket_error(e),
    }
}

/// Time left until `deadline`, rounded up to whole milliseconds (so that a call made within the
/// same millisecond as the last one sets the same timeout); `None` once it has passed.
fn left(deadline: Instant) -> Option<Duration> {
    let left = deadline.checked_duration_since(Instant::now())?;
    (!left.is_zero()).then(|| Duration::from_millis(left.as_micros().div_ceil(1000) as u64))
}

impl Connection {
    fn set_read_timeout(&mut self, timeout: Duration) -> Result<(), SocketError> {
        if self.read_timeout != Some(timeout) {
            self.stream
                .tcp()
                .set_read_timeout(Some(timeout))
                .map_err(|e| error(&e))?;
            self.read_timeout = Some(timeout);
        }
        Ok(())
    }

    fn set_write_timeout(&mut self, timeout: Duration) -> Result<(), SocketError> {
        if self.write_timeout != Some(timeout) {
            self.stream
                .tcp()
                .set_write_timeout(Some(timeout))
                .map_err(|e| error(&e))?;
            self.write_timeout = Some(timeout);
        }
        Ok(())
    }

    /// Writes all of `request` before `deadline`.
    fn write(&mut self, request: &[u8], deadline: Instant) -> Result<(), SocketError> {
        let timeout = left(deadline).ok_or(SocketError::TimedOut)?;
        self.set_write_timeout(timeout)?;
        let io = self.stream.io();
        io.write_all(request).map_err(|e| error(&e))?;
        // A TLS stream holds records until flushed.
        io.flush().map_err(|e| error(&e))
    }

    /// Reads what is there (waiting for at least one byte until `deadline`), up to `max_bytes`.
    fn read(&mut self, max_bytes: u32, deadline: Instant) -> Result<Vec<u8>, SocketError> {
        let timeout = left(deadline).ok_or(SocketError::TimedOut)?;
        self.set_read_timeout(timeout)?;
        let max = (max_bytes as usize).clamp(1, MAX_READ);
        if self.read_buffer.len() < max {
            self.read_buffer.resize(max, 0);
        }
        let Connection {
            stream,
            read_buffer,
            ..
        } = self;
        match stream.io().read(&mut read_buffer[..max]) {
            Err(e) => Err(error(&e)),
            Ok(0) => Err(SocketError::Closed),
            Ok(n) => Ok(read_buffer[..n].to_vec()),
        }
    }
}

/// Opens a TCP connection (and TLS, if asked) before `deadline`.
fn connect(
    host: &str,
    port: u16,
    deadline: Instant,
    tls: Option<&TlsSettings>,
) -> Result<Stream, SocketError> {
    let addresses = (host, port).to_socket_addrs().map_err(|e| {
        tracing::debug!(%host, port, error = %e, "cannot resolve");
        error(&e)
    })?;
    let mut failure = SocketError::Refused;
    for address in addresses {
        let timeout = left(deadline).ok_or(SocketError::TimedOut)?;
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(tcp) => {
                tcp.set_nodelay(true).map_err(|e| error(&e))?;
                return match tls {
                    None => Ok(Stream::Plain(tcp)),
                    Some(settings) => {
                        let timeout = left(deadline).ok_or(SocketError::TimedOut)?;
                        crate::tls::handshake_blocking(tcp, settings, (host, port), timeout)
                            .map(|tls| Stream::Tls(Box::new(tls)))
                            .map_err(|why| {
                                tracing::debug!(%host, port, error = %why, "TLS handshake failed");
                                SocketError::Tls(why)
                            })
                    }
                };
            }
            Err(e) => {
                tracing::debug!(%host, port, %address, error = %e, "connect failed");
                failure = error(&e);
            }
        }
    }
    Err(failure)
}

impl Host for BlockingState {}

impl HostConnection for BlockingState {
    fn connect(
        &mut self,
        host: String,
        port: u16,
        timeout_ms: u32,
        tls: Option<TlsSettings>,
    ) -> wasmtime::Result<Result<Resource<Connection>, SocketError>> {
        let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
        Ok(match connect(&host, port, deadline, tls.as_ref()) {
            Err(e) => Err(e),
            Ok(stream) => Ok(self.table.push(Connection {
                stream,
                read_timeout: None,
                write_timeout: None,
                read_buffer: Vec::new(),
            })?),
        })
    }

    fn exchange(
        &mut self,
        connection: Resource<Connection>,
        request: Vec<u8>,
        max_bytes: u32,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, SocketError>> {
        let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
        let connection = self.table.get_mut(&connection)?;
        Ok(connection
            .write(&request, deadline)
            .and_then(|()| connection.read(max_bytes, deadline)))
    }

    fn send(
        &mut self,
        connection: Resource<Connection>,
        request: Vec<u8>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<(), SocketError>> {
        let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
        Ok(self.table.get_mut(&connection)?.write(&request, deadline))
    }

    fn receive(
        &mut self,
        connection: Resource<Connection>,
        max_bytes: u32,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, SocketError>> {
        let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
        Ok(self.table.get_mut(&connection)?.read(max_bytes, deadline))
    }

    fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}
