//! The seed's API (`tryAcquireLock`, `acquireLock`, `releaseLock`): leases kept by key inside
//! the instance, so `release_lock(key)` finds the lease `acquire_lock` took. A short list: an
//! instance holds few locks at once, and a map would cost the component kilobytes of code.

use super::MemcachedLock;
use crate::driver::Host;
use crate::error::Result;
use crate::lease::Lease;

impl<H: Host> MemcachedLock<H> {
    /// Seed API: `tryAcquireLock`.
    pub fn try_acquire_lock(
        &mut self,
        correlation_id: Option<&str>,
        key: &[u8],
        ttl_ms: i64,
    ) -> Result<bool> {
        let lease = self.try_acquire(correlation_id, key, ttl_ms)?;
        Ok(lease.map(|lease| self.hold(lease)).is_some())
    }

    /// Seed API: `acquireLock`.
    pub fn acquire_lock(
        &mut self,
        correlation_id: Option<&str>,
        key: &[u8],
        ttl_ms: i64,
        timeout_ms: i64,
    ) -> Result<()> {
        let lease = self.acquire(correlation_id, key, ttl_ms, timeout_ms)?;
        self.hold(lease);
        Ok(())
    }

    /// Seed API: `releaseLock`. Releases this instance's lease on `key`; a no-op without one.
    pub fn release_lock(&mut self, correlation_id: Option<&str>, key: &[u8]) -> Result<()> {
        self.servers_or_not_opened()
            .map_err(|e| e.with_correlation(correlation_id))?;
        if let Some(i) = self.held.iter().position(|h| h.key == key) {
            let lease = self.held[i].clone();
            self.release(correlation_id, &lease)?;
            self.held.swap_remove(i);
        }
        Ok(())
    }

    /// Remembers a lease of the seed API, replacing an older one on the same key.
    fn hold(&mut self, lease: Lease) {
        self.held.retain(|h| h.key != lease.key);
        self.held.push(lease);
    }
}
