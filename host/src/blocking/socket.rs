//! `memlock:lock/socket` on blocking std sockets: each call blocks the calling thread until its
//! deadline (the timeout the component passes) at the latest. The deadline bounds the whole call,
//! not each system call: [`DeadlineTcp`] sets the socket's timeout to the time left before every
//! read and write (a system call only when that changes), so a server that trickles bytes — into
//! a TLS record, say — cannot stretch a call past it.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio_rustls::rustls::{ClientConnection, StreamOwned};
use wasmtime::component::Resource;

use super::bindings::memlock::lock::socket::{Host, HostConnection, SocketError, TlsSettings};
use super::state::BlockingState;
use crate::imports::socket_error;

/// Largest single read handed to the component.
const MAX_READ: usize = 64 * 1024;

/// A TCP stream whose reads and writes all end by `deadline`: past it they fail with
/// `TimedOut`. Interrupted system calls (a signal) are retried with the time left.
pub(crate) struct DeadlineTcp {
    tcp: TcpStream,
    pub(crate) deadline: Instant,
    /// The socket's timeouts as last set: the component passes the same timeout call after call,
    /// and each change costs a system call.
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

/// `TcpStream::set_read_timeout` or `set_write_timeout`.
type SetTimeout = fn(&TcpStream, Option<Duration>) -> io::Result<()>;

fn timed_out() -> io::Error {
    io::Error::from(io::ErrorKind::TimedOut)
}

impl DeadlineTcp {
    /// Runs `op` with the socket timeout (`read` or write) set to the time left.
    fn bounded<T>(
        &mut self,
        read: bool,
        mut op: impl FnMut(&mut TcpStream) -> io::Result<T>,
    ) -> io::Result<T> {
        loop {
            let timeout = left(self.deadline, Instant::now()).ok_or_else(timed_out)?;
            let (current, set): (_, SetTimeout) = if read {
                (&mut self.read_timeout, TcpStream::set_read_timeout)
            } else {
                (&mut self.write_timeout, TcpStream::set_write_timeout)
            };
            if *current != Some(timeout) {
                set(&self.tcp, Some(timeout))?;
                *current = Some(timeout);
            }
            match op(&mut self.tcp) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A socket timeout surfaces as `WouldBlock` on Unix.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(timed_out()),
                other => return other,
            }
        }
    }
}

impl Read for DeadlineTcp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.bounded(true, |tcp| tcp.read(buf))
    }
}

impl Write for DeadlineTcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bounded(false, |tcp| tcp.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

enum Stream {
    Plain(DeadlineTcp),
    Tls(Box<StreamOwned<ClientConnection, DeadlineTcp>>),
}

impl Stream {
    fn set_deadline(&mut self, deadline: Instant) {
        match self {
            Stream::Plain(tcp) => tcp.deadline = deadline,
            Stream::Tls(tls) => tls.sock.deadline = deadline,
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
    /// Reads land here first (zeroed once per connection, as in the async host).
    read_buffer: Vec<u8>,
}

/// Time left until `deadline` at `now`, rounded up to whole milliseconds (so that calls made
/// within the same millisecond set the same socket timeout, and a sliver left is never a zero
/// timeout, which the socket refuses); `None` once it has passed.
fn left(deadline: Instant, now: Instant) -> Option<Duration> {
    let left = deadline.checked_duration_since(now)?;
    let ms = left.as_nanos().div_ceil(1_000_000);
    (ms > 0).then(|| Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX)))
}

impl Connection {
    /// Writes all of `request` before `deadline`.
    fn write(&mut self, request: &[u8], deadline: Instant) -> Result<(), SocketError> {
        self.stream.set_deadline(deadline);
        let io = self.stream.io();
        io.write_all(request).map_err(|e| socket_error(&e))?;
        // A TLS stream holds records until flushed.
        io.flush().map_err(|e| socket_error(&e))
    }

    /// Reads what is there (waiting for at least one byte until `deadline`), up to `max_bytes`.
    fn read(&mut self, max_bytes: u32, deadline: Instant) -> Result<Vec<u8>, SocketError> {
        self.stream.set_deadline(deadline);
        let max = (max_bytes as usize).clamp(1, MAX_READ);
        if self.read_buffer.len() < max {
            self.read_buffer.resize(max, 0);
        }
        let Connection {
            stream,
            read_buffer,
        } = self;
        match stream.io().read(&mut read_buffer[..max]) {
            Err(e) => Err(socket_error(&e)),
            Ok(0) => Err(SocketError::Closed),
            Ok(n) => Ok(read_buffer[..n].to_vec()),
        }
    }
}

/// `host`'s addresses, resolved before `deadline`: the system resolver has timeouts of its own
/// (seconds per nameserver), so a name is looked up on a thread of its own and waited for only
/// until the deadline (the lookup then finishes unobserved). An IP address needs no lookup.
fn resolve(host: &str, port: u16, deadline: Instant) -> Result<Vec<SocketAddr>, SocketError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (send, receive) = mpsc::channel();
    let name = host.to_owned();
    std::thread::Builder::new()
        .name("memlock-resolve".into())
        .spawn(move || {
            let _ = send.send((name.as_str(), port).to_socket_addrs().map(Vec::from_iter));
        })
        .map_err(|e| socket_error(&e))?;
    let timeout = left(deadline, Instant::now()).ok_or(SocketError::TimedOut)?;
    match receive.recv_timeout(timeout) {
        Ok(Ok(addresses)) => Ok(addresses),
        Ok(Err(e)) => {
            tracing::debug!(%host, port, error = %e, "cannot resolve");
            Err(socket_error(&e))
        }
        Err(_) => Err(SocketError::TimedOut),
    }
}

/// Opens a TCP connection (and TLS, if asked) before `deadline`.
fn connect(
    host: &str,
    port: u16,
    deadline: Instant,
    tls: Option<&TlsSettings>,
) -> Result<Stream, SocketError> {
    let mut failure = SocketError::Refused;
    for address in resolve(host, port, deadline)? {
        let timeout = left(deadline, Instant::now()).ok_or(SocketError::TimedOut)?;
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(tcp) => {
                tcp.set_nodelay(true).map_err(|e| socket_error(&e))?;
                let tcp = DeadlineTcp {
                    tcp,
                    deadline,
                    read_timeout: None,
                    write_timeout: None,
                };
                return match tls {
                    None => Ok(Stream::Plain(tcp)),
                    Some(settings) => crate::tls::handshake_blocking(tcp, settings, (host, port))
                        .map(|tls| Stream::Tls(Box::new(tls)))
                        .inspect_err(
                            |e| tracing::debug!(%host, port, error = ?e, "TLS handshake failed"),
                        ),
                };
            }
            Err(e) => {
                tracing::debug!(%host, port, %address, error = %e, "connect failed");
                failure = socket_error(&e);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_rounds_up_to_a_whole_millisecond_never_to_zero() {
        let now = Instant::now();
        assert_eq!(
            left(now + Duration::from_nanos(500), now),
            Some(Duration::from_millis(1))
        );
        assert_eq!(
            left(now + Duration::from_micros(1500), now),
            Some(Duration::from_millis(2))
        );
        assert_eq!(left(now, now), None);
    }
}
