//! The lock's core built natively (no wasm), driven over tokio: the `Host` trait implemented with
//! tokio sockets; a call enters the current-thread runtime only when it has to wait. This is the
//! baseline the component is compared with: same logic, same protocol, no WebAssembly boundary.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use memlock_guest::driver::{ConnectionParams, Host, SocketError};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

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

fn error(e: &std::io::Error) -> SocketError {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset => {
            SocketError::Refused
        }
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::BrokenPipe => SocketError::Closed,
        _ => SocketError::Other,
    }
}

impl Host for NativeHost {
    type Stream = RefCell<TcpStream>;

    fn connect(&self, host: &str, port: u16, timeout_ms: u32) -> Result<Self::Stream, SocketError> {
        self.runtime.block_on(async {
            match tokio::time::timeout(
                Duration::from_millis(timeout_ms.into()),
                TcpStream::connect((host, port)),
            )
            .await
            {
                Err(_) => Err(SocketError::TimedOut),
                Ok(Err(e)) => Err(error(&e)),
                Ok(Ok(s)) => {
                    s.set_nodelay(true).map_err(|e| error(&e))?;
                    Ok(RefCell::new(s))
                }
            }
        })
    }

    /// Writes without entering the runtime when the socket takes the bytes at once (the usual
    /// case for a lock command), then reads like [`Host::receive`]; one deadline for both.
    fn exchange(
        &self,
        stream: &Self::Stream,
        request: &[u8],
        max_bytes: u32,
        timeout_ms: u32,
        reply: &mut Vec<u8>,
    ) -> Result<(), SocketError> {
        // The clock is read only if the write has to wait (rare for a lock command): then the
        // read gets what is left of the timeout.
        let mut deadline = None;
        {
            let stream = stream.borrow_mut();
            let mut written = 0;
            while written < request.len() {
                match stream.try_write(&request[written..]) {
                    Ok(n) => written += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        let deadline = *deadline.get_or_insert_with(|| {
                            Instant::now() + Duration::from_millis(timeout_ms.into())
                        });
                        let wait = deadline.saturating_duration_since(Instant::now());
                        let ready = async { tokio::time::timeout(wait, stream.writable()).await };
                        match self.runtime.block_on(ready) {
                            Err(_) => return Err(SocketError::TimedOut),
                            Ok(r) => r.map_err(|e| error(&e))?,
                        }
                    }
                    Err(e) => return Err(error(&e)),
                }
            }
        }
        let left = match deadline {
            None => timeout_ms,
            Some(deadline) => {
                let left = deadline
                    .saturating_duration_since(Instant::now())
                    .as_millis();
                u32::try_from(left).unwrap_or(u32::MAX).max(1)
            }
        };
        self.receive(stream, max_bytes, left, reply)
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
        let stream = stream.borrow_mut();
        reply.reserve(max_bytes as usize);
        loop {
            match stream.try_read_buf(reply) {
                Ok(0) => return Err(SocketError::Closed),
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let wait = Duration::from_millis(timeout_ms.into());
                    let ready = async { tokio::time::timeout(wait, stream.readable()).await };
                    match self.runtime.block_on(ready) {
                        Err(_) => return Err(SocketError::TimedOut),
                        Ok(r) => r.map_err(|e| error(&e))?,
                    }
                }
                Err(e) => return Err(error(&e)),
            }
        }
    }

    fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    fn sleep_ns(&self, ns: u64) {
        self.runtime
            .block_on(tokio::time::sleep(Duration::from_nanos(ns)));
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
}
