//! Test support: real `memcached` processes on free loopback ports, a raw client to look at what
//! the server really holds, scripted fake servers for failure cases, and certificates for TLS.
//!
//! Tests never skip: when `memcached` is not installed, [`Memcached::start`] panics with the
//! command that installs it.

pub mod fake_server;
pub mod memcached;
pub mod pki;
pub mod raw;

pub use memcached::Memcached;

use memlock_host::{Lease, Lock, Runtime};

/// A lock instance configured for `server`, opened, with extra ConfigParams.
pub async fn open_lock(server: &Memcached, extra: &[(&str, &str)]) -> Lock {
    let lock = Lock::new(runtime())
        .await
        .expect("instantiate the component");
    let mut config = server.config();
    config.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    lock.configure(&config).await.expect("configure");
    lock.open(None).await.expect("open");
    lock
}

/// One attempt that must succeed: the lease, or a panic naming the key.
pub async fn must_acquire(lock: &Lock, key: &[u8], ttl_ms: i64) -> Lease {
    match lock.try_acquire(None, key, ttl_ms).await {
        Ok(Some(lease)) => lease,
        Ok(None) => panic!("{} is held by someone else", String::from_utf8_lossy(key)),
        Err(e) => panic!("acquiring {} failed: {e}", String::from_utf8_lossy(key)),
    }
}

/// The process-wide runtime (compiled once, cached on disk).
pub fn runtime() -> &'static Runtime {
    Runtime::shared().expect("load the memlock component")
}
