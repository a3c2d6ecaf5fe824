//! The five latency rows (floor, peer, native core, component, blocking component), measured
//! interleaved.
//!
//! Each path keeps its connection or lock open for the whole run, and the run is split into
//! rounds: every round measures a short batch of each path, in an order that rotates from round
//! to round. Drift over the run (CPU frequency, the neighbours on a shared machine, memcached's
//! own state) then falls on all five rows alike, so their ratios, which are the targets, are
//! comparisons made side by side rather than one block after another.

use std::time::{Duration, Instant};

use async_memcached::{Client, MetaProtocol};
use memlock_host::{BlockingLock, Lock, Runtime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::native::NativeHost;

/// Cycles of each path before any is recorded (connections warm, code paged in).
const WARMUP: usize = 300;
/// Rounds the recorded cycles are split into.
const ROUNDS: usize = 50;

/// Recorded samples of each path.
pub struct Samples {
    pub floor: Vec<Duration>,
    pub peer: Vec<Duration>,
    pub native: Vec<Duration>,
    pub component: Vec<Duration>,
    pub blocking: Vec<Duration>,
}

/// Paths measured, in rotation.
const PATHS: usize = 5;

/// One open instance of each path.
pub struct Paths {
    floor: TcpStream,
    peer: Client,
    native: memlock_guest::MemcachedLock<NativeHost>,
    component: Lock,
    blocking: BlockingLock,
}

impl Paths {
    pub async fn open(runtime: &'static Runtime, addr: &str) -> Paths {
        let floor = TcpStream::connect(addr).await.expect("connect");
        floor.set_nodelay(true).expect("nodelay");
        Paths {
            floor,
            peer: open_peer(addr).await,
            native: open_native(addr),
            component: open_lock(runtime, addr, 1).await,
            blocking: open_blocking(runtime, addr),
        }
    }

    /// `n` recorded cycles of each path after the warm-up, interleaved in rounds.
    pub fn measure(&mut self, rt: &tokio::runtime::Runtime, n: usize) -> Samples {
        let mut samples = Samples {
            floor: Vec::with_capacity(n),
            peer: Vec::with_capacity(n),
            native: Vec::with_capacity(n),
            component: Vec::with_capacity(n),
            blocking: Vec::with_capacity(n),
        };
        let mut discard = Vec::new();
        for path in 0..PATHS {
            self.run(rt, path, WARMUP, &mut discard);
        }
        let per_round = n.div_ceil(ROUNDS);
        for round in 0..ROUNDS {
            for step in 0..PATHS {
                let path = (round + step) % PATHS;
                let out = match path {
                    0 => &mut samples.floor,
                    1 => &mut samples.peer,
                    2 => &mut samples.native,
                    3 => &mut samples.component,
                    _ => &mut samples.blocking,
                };
                let batch = per_round.min(n - out.len());
                self.run(rt, path, batch, out);
            }
        }
        samples
    }

    fn run(
        &mut self,
        rt: &tokio::runtime::Runtime,
        path: usize,
        n: usize,
        out: &mut Vec<Duration>,
    ) {
        match path {
            0 => rt.block_on(floor(&mut self.floor, n, out)),
            1 => rt.block_on(peer(&mut self.peer, n, out)),
            2 => native(&mut self.native, n, out),
            3 => rt.block_on(component(&self.component, n, out)),
            _ => blocking(&mut self.blocking, n, out),
        }
    }
}

/// A configured, opened `Lock` with `instances` component instances.
pub async fn open_lock(runtime: &'static Runtime, addr: &str, instances: usize) -> Lock {
    let lock = Lock::with_instances(runtime, memlock_host::Environment::default(), instances)
        .await
        .expect("instantiate");
    lock.configure(&[("connection.uri", addr)])
        .await
        .expect("configure");
    lock.open(None).await.expect("open");
    lock
}

/// A configured, opened `BlockingLock`.
pub fn open_blocking(runtime: &'static Runtime, addr: &str) -> BlockingLock {
    let mut lock = BlockingLock::new(runtime).expect("instantiate");
    lock.configure(&[("connection.uri", addr)])
        .expect("configure");
    lock.open(None).expect("open");
    lock
}

/// The peer's client, connected.
pub async fn open_peer(addr: &str) -> Client {
    Client::new(format!("tcp://{addr}"))
        .await
        .expect("async-memcached connect")
}

/// The lock's core over the native host, configured and opened.
pub fn open_native(addr: &str) -> memlock_guest::MemcachedLock<NativeHost> {
    let mut lock = memlock_guest::MemcachedLock::new(NativeHost::new());
    lock.configure(&[("connection.uri", addr)])
        .expect("configure");
    lock.open(None).expect("open");
    lock
}

/// One `mn` round trip: the physical floor of a lock operation.
async fn floor(stream: &mut TcpStream, n: usize, out: &mut Vec<Duration>) {
    let mut buf = [0u8; 64];
    for _ in 0..n {
        let t = Instant::now();
        stream.write_all(b"mn\r\n").await.expect("write");
        let mut got = 0;
        while got < 4 {
            got += stream.read(&mut buf[got..]).await.expect("read");
        }
        out.push(t.elapsed());
    }
}

/// Acquire + release by hand with a maintained client crate: `ms … ME` then `md … C<cas>`.
pub async fn peer(client: &mut Client, n: usize, out: &mut Vec<Duration>) {
    for _ in 0..n {
        let t = Instant::now();
        peer_cycle(client, "peer-lock").await;
        out.push(t.elapsed());
    }
}

/// The peer's acquire + release of a free `key`: `ms … ME c`, then `md … C<cas>`.
pub async fn peer_cycle(client: &mut Client, key: &str) {
    let stored = client
        .meta_set(
            key,
            "0123456789abcdef0123456789abcdef",
            false,
            None,
            Some(&["T11", "ME", "c"]),
        )
        .await
        .expect("ms");
    let cas = stored.and_then(|v| v.cas).expect("acquired with a CAS");
    let c = format!("C{cas}");
    client
        .meta_delete(key, false, None, Some(&[c.as_str()]))
        .await
        .expect("md");
}

/// The lock's core natively: same logic and protocol, no WebAssembly boundary.
pub fn native(
    lock: &mut memlock_guest::MemcachedLock<NativeHost>,
    n: usize,
    out: &mut Vec<Duration>,
) {
    for _ in 0..n {
        let t = Instant::now();
        let lease = lock
            .try_acquire(None, b"native-lock", 10_000)
            .expect("try")
            .expect("acquired");
        assert!(lock.release(None, &lease).expect("release"));
        out.push(t.elapsed());
    }
}

/// The component through the host's Rust API.
pub async fn component(lock: &Lock, n: usize, out: &mut Vec<Duration>) {
    for _ in 0..n {
        let t = Instant::now();
        cycle(lock, b"component-lock").await;
        out.push(t.elapsed());
    }
}

/// The component called synchronously on this thread (`BlockingLock`): no fibers, no tokio.
pub fn blocking(lock: &mut BlockingLock, n: usize, out: &mut Vec<Duration>) {
    for _ in 0..n {
        let t = Instant::now();
        let lease = lock
            .try_acquire(None, b"blocking-lock", 10_000)
            .expect("try")
            .expect("acquired");
        assert!(lock.release(None, &lease).expect("release"));
        out.push(t.elapsed());
    }
}

/// One acquire + release of a free `key` through the host's Rust API; both must succeed.
pub async fn cycle(lock: &Lock, key: &[u8]) {
    let lease = lock
        .try_acquire(None, key, 10_000)
        .await
        .expect("try")
        .expect("acquired");
    assert!(lock.release(None, &lease).await.expect("release"));
}
