//! The lock's core built natively (no wasm), driven over tokio: the `Host` trait implemented with
//! tokio sockets; a call enters the current-thread runtime only when it has to wait. This is the
//! baseline the component is compared with: same logic, same protocol, no WebAssembly boundary.

use std::cell::RefCell;
use std::pin::Pin;
use std::time::{Duration, Instant};

use memlock_guest::driver::{ConnectionParams, Host, SocketError};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::time::Sleep;

pub struct NativeHost {
    runtime: Runtime,
    origin: Instant,
    rng: std::cell::Cell<u64>,
}

impl NativeHost {
    pub(crate) fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        NativeHost {
            runtime,
            origin: Instant::now(),
            rng: std::cell::Cell::new(seed | 1),
        }
    }
}

/// Reads between 1 and `max_bytes` bytes into `reply`, waiting until `deadline` for the first.
fn read(
    runtime: &Runtime,
    stream: &Connection,
    max_bytes: u32,
    deadline: Instant,
    reply: &mut Vec<u8>,
) -> Result<(), SocketError> {
    reply.reserve(max_bytes as usize);
    loop {
        match stream.socket.try_read_buf(reply) {
            Ok(0) => return Err(SocketError::Closed),
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                stream.wait(runtime, Interest::READABLE, deadline)?
            }
            Err(e) => return Err(error(&e)),
        }
    }
}

fn error(e: &std::io::Error) -> SocketError {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset => {
            SocketError::Refused
        }
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::BrokenPipe => SocketError::Closed,
        _ => SocketError::Other,
    }
}

/// One connection: the socket and the timer that bounds its waits, made once and moved to each
/// wait's deadline, as the wasmtime host's socket import does (moving a timer that has not fired
/// to a later deadline is one atomic update). This host always waits in its own runtime, so the
/// timer stays valid.
pub struct Connection {
    socket: TcpStream,
    timer: RefCell<Pin<Box<Sleep>>>,
}

impl Connection {
    /// Waits until `interest` is ready or `deadline` passes.
    fn wait(
        &self,
        runtime: &Runtime,
        interest: Interest,
        deadline: Instant,
    ) -> Result<(), SocketError> {
        let mut timer = self.timer.borrow_mut();
        timer.as_mut().reset(deadline.into());
        let ready = async {
            tokio::select! {
                biased;
                ready = self.socket.ready(interest) => ready.map(drop).map_err(|e| error(&e)),
                () = timer.as_mut() => Err(SocketError::TimedOut),
            }
        };
        runtime.block_on(ready)
    }
}

/// Writes all of `request`, entering the runtime only when the socket cannot take it at once.
fn write(
    runtime: &Runtime,
    stream: &Connection,
    request: &[u8],
    deadline: Instant,
) -> Result<(), SocketError> {
    let mut written = 0;
    while written < request.len() {
        match stream.socket.try_write(&request[written..]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                stream.wait(runtime, Interest::WRITABLE, deadline)?
            }
            Err(e) => return Err(error(&e)),
        }
    }
    Ok(())
}

impl Host for NativeHost {
    type Stream = Connection;

    fn connect(
        &self,
        host: &str,
        port: u16,
        timeout_ms: u32,
        tls: Option<&memlock_guest::security::Tls>,
    ) -> Result<Self::Stream, SocketError> {
        if tls.is_some() {
            return Err(SocketError::Tls(
                "the native bench host speaks plaintext only".into(),
            ));
        }
        self.runtime.block_on(async {
            let timeout = Duration::from_millis(timeout_ms.into());
            match tokio::time::timeout(timeout, TcpStream::connect((host, port))).await {
                Err(_) => Err(SocketError::TimedOut),
                Ok(Err(e)) => Err(error(&e)),
                Ok(Ok(socket)) => {
                    socket.set_nodelay(true).map_err(|e| error(&e))?;
                    Ok(Connection {
                        socket,
                        timer: RefCell::new(Box::pin(tokio::time::sleep(timeout))),
                    })
                }
            }
        })
    }

    /// Writes without entering the runtime when the socket takes the bytes at once (the usual
    /// case for a lock command), then waits for the reply; one deadline for both.
    fn exchange(
        &self,
        stream: &Self::Stream,
        request: &[u8],
        max_bytes: u32,
        timeout_ms: u32,
        reply: &mut Vec<u8>,
    ) -> Result<(), SocketError> {
        let deadline = Instant::now() + Duration::from_millis(timeout_ms.into());
        write(&self.runtime, stream, request, deadline)?;
        read(&self.runtime, stream, max_bytes, deadline, reply)
    }

    fn send(
        &self,
        stream: &Self::Stream,
        request: &[u8],
        timeout_ms: u32,
    ) -> Result<(), SocketError> {
        let deadline = Instant::now() + Duration::from_millis(timeout_ms.into());
        write(&self.runtime, stream, request, deadline)
    }

    /// Reads what is there straight into the connection's buffer; enters the runtime to wait
    /// only when nothing is.
    fn receive(
        &self,
        stream: &Self::Stream,
        max_bytes: u32,
        timeout_ms: u32,
        reply: &mut Vec<u8>,
    ) -> Result<(), SocketError> {
        let deadline = Instant::now() + Duration::from_millis(timeout_ms.into());
        read(&self.runtime, stream, max_bytes, deadline, reply)
    }

    fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    fn sleep_ns(&self, ns: u64) -> bool {
        self.runtime
            .block_on(tokio::time::sleep(Duration::from_nanos(ns)));
        true
    }

    fn random_u64(&self) -> u64 {
        // xorshift64*: the benchmark needs unique tokens, not secrecy.
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn resolve_all(&self, _: Option<&str>, _: &str) -> Result<Vec<ConnectionParams>, String> {
        Err("no discovery in the benchmark".into())
    }

    fn lookup_credential(
        &self,
        _: Option<&str>,
        _: &str,
    ) -> Result<Option<ConnectionParams>, String> {
        Err("no credential store in the benchmark".into())
    }
}
