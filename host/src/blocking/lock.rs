//! [`BlockingLock`]: one component instance behind blocking methods.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::Store;
use wasmtime::component::{ResourceAny, ResourceTable};

use super::bindings::Memlock;
use super::bindings::exports::memlock::lock::lock::GuestMemcachedLock;
use super::state::BlockingState;
use crate::credentials::{CredentialStore, MemoryCredentialStore};
use crate::discovery::{Discovery, MemoryDiscovery};
use crate::error::Error;
use crate::lease::{ComponentClock, Lease};
use crate::lock::Configuration;
use crate::runtime::Runtime;

/// What a blocking lock's imports are backed by (its sockets are std TCP, its clock real time).
#[derive(Clone)]
pub struct BlockingEnvironment {
    pub discovery: Arc<dyn Discovery>,
    /// Answers `credential.store_key` (with a `*:credential-store:*:*:1.0` reference).
    pub credential_store: Arc<dyn CredentialStore>,
    /// Seeds the component's randomness (owner tokens, jitter) for a reproducible run; `None`
    /// draws from the OS.
    pub random_seed: Option<u64>,
}

impl Default for BlockingEnvironment {
    fn default() -> Self {
        BlockingEnvironment {
            discovery: Arc::new(MemoryDiscovery::new()),
            credential_store: Arc::new(MemoryCredentialStore::new()),
            random_seed: None,
        }
    }
}

struct Instance {
    store: Store<BlockingState>,
    bindings: Memlock,
    handle: ResourceAny,
}

/// pip-services `MemcachedLock` for callers that block: every method runs the component on the
/// calling thread and returns when the component does. One call at a time (`&mut self`); a
/// thread that needs several keys at once uses several locks, or the async [`crate::Lock`].
///
/// Do not call it from an async task: it blocks the thread for up to the call's timeouts.
pub struct BlockingLock {
    runtime: Runtime,
    env: BlockingEnvironment,
    /// `None` after a trap: the next call makes a new instance and replays the setup.
    instance: Option<Instance>,
    /// Instances made so far; numbers each one's random seed.
    made: u64,
    latest: Configuration,
    /// While open: what the instance was opened with.
    opened: Option<Configuration>,
    clock_origin: Instant,
}

impl BlockingLock {
    /// A new, unconfigured lock with real TCP.
    pub fn new(runtime: &Runtime) -> Result<BlockingLock, Error> {
        BlockingLock::with_environment(runtime, BlockingEnvironment::default())
    }

    pub fn with_environment(
        runtime: &Runtime,
        env: BlockingEnvironment,
    ) -> Result<BlockingLock, Error> {
        let mut lock = BlockingLock {
            runtime: runtime.clone(),
            env,
            instance: None,
            made: 0,
            latest: Configuration::default(),
            opened: None,
            clock_origin: Instant::now(),
        };
        lock.instance = Some(lock.make()?);
        Ok(lock)
    }

    fn clock(&self) -> ComponentClock {
        ComponentClock {
            origin: tokio::time::Instant::from_std(self.clock_origin),
            rate: 1.0,
        }
    }

    /// A new instance, set up as the lock is.
    fn make(&mut self) -> Result<Instance, Error> {
        let shard = self.made;
        self.made += 1;
        let state = BlockingState {
            wasi: crate::lock::wasi_context(
                self.env.random_seed,
                tokio::time::Instant::from_std(self.clock_origin),
                shard,
            ),
            table: ResourceTable::new(),
            discovery: self.env.discovery.clone(),
            credential_store: self.env.credential_store.clone(),
            clock_origin: self.clock_origin,
        };
        let mut store = Store::new(&self.runtime.engine, state);
        let bindings = self
            .runtime
            .blocking_pre()?
            .instantiate(&mut store)
            .map_err(Error::runtime)?;
        let api = bindings.memlock_lock_lock().memcached_lock();
        let handle = api.call_constructor(&mut store).map_err(Error::runtime)?;
        let setup = self.opened.as_ref().unwrap_or(&self.latest);
        if let Some(config) = &setup.config {
            api.call_configure(&mut store, handle, config)
                .map_err(Error::runtime)??;
        }
        if let Some(references) = &setup.references {
            api.call_set_references(&mut store, handle, references)
                .map_err(Error::runtime)??;
        }
        if self.opened.is_some() {
            api.call_open(&mut store, handle, None)
                .map_err(Error::runtime)??;
        }
        Ok(Instance {
            store,
            bindings,
            handle,
        })
    }

    /// Runs `f` with the instance's lock export, store and lock resource (the instance made anew
    /// if a trap lost the last one).
    fn call<T>(
        &mut self,
        f: impl FnOnce(
            &GuestMemcachedLock,
            &mut Store<BlockingState>,
            ResourceAny,
        ) -> wasmtime::Result<T>,
    ) -> Result<T, Error> {
        let mut instance = match self.instance.take() {
            Some(instance) => instance,
            None => {
                tracing::warn!("replacing a component instance left unusable by a trap");
                self.make()?
            }
        };
        let Instance {
            store,
            bindings,
            handle,
        } = &mut instance;
        let api = bindings.memlock_lock_lock().memcached_lock();
        let result = f(&api, store, *handle).map_err(Error::runtime)?;
        self.instance = Some(instance);
        Ok(result)
    }

    /// pip-services `configure`: ConfigParams pairs (`connection.uri`, `options.timeout`, ...).
    pub fn configure<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        config: &[(K, V)],
    ) -> Result<(), Error> {
        let pairs: Vec<(String, String)> = config
            .iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
            .collect();
        self.call(|api, store, handle| api.call_configure(store, handle, &pairs))??;
        self.latest.config = Some(pairs);
        Ok(())
    }

    /// pip-services `setReferences`, as locator descriptors.
    pub fn set_references(&mut self, descriptors: &[String]) -> Result<(), Error> {
        self.call(|api, store, handle| api.call_set_references(store, handle, descriptors))??;
        self.latest.references = Some(descriptors.to_vec());
        Ok(())
    }

    pub fn open(&mut self, correlation_id: Option<&str>) -> Result<(), Error> {
        self.call(|api, store, handle| api.call_open(store, handle, correlation_id))??;
        if self.opened.is_none() {
            self.opened = Some(self.latest.clone());
        }
        Ok(())
    }

    pub fn is_open(&mut self) -> Result<bool, Error> {
        self.call(|api, store, handle| api.call_is_open(store, handle))
    }

    pub fn close(&mut self, correlation_id: Option<&str>) -> Result<(), Error> {
        self.opened = None;
        Ok(self.call(|api, store, handle| api.call_close(store, handle, correlation_id))??)
    }

    /// One attempt; `true` when this lock now holds `key` for `ttl_ms` (the seed's API: the
    /// lease is kept by the instance).
    pub fn try_acquire_lock(
        &mut self,
        correlation_id: Option<&str>,
        key: &[u8],
        ttl_ms: i64,
    ) -> Result<bool, Error> {
        Ok(self.call(|api, store, handle| {
            api.call_try_acquire_lock(store, handle, correlation_id, key, ttl_ms)
        })??)
    }

    /// Waits up to `timeout_ms`; then fails with `LOCK_TIMEOUT`.
    pub fn acquire_lock(
        &mut self,
        correlation_id: Option<&str>,
        key: &[u8],
        ttl_ms: i64,
        timeout_ms: i64,
    ) -> Result<(), Error> {
        Ok(self.call(|api, store, handle| {
            api.call_acquire_lock(store, handle, correlation_id, key, ttl_ms, timeout_ms)
        })??)
    }

    /// Releases the lease this lock holds on `key`; a no-op if it holds none.
    pub fn release_lock(&mut self, correlation_id: Option<&str>, key: &[u8]) -> Result<(), Error> {
        Ok(self.call(|api, store, handle| {
            api.call_release_lock(store, handle, correlation_id, key)
        })??)
    }

    /// One attempt, returning the lease; `None` when the key is held by someone else.
    pub fn try_acquire(
        &mut self,
        correlation_id: Option<&str>,
        key: &[u8],
        ttl_ms: i64,
    ) -> Result<Option<Lease>, Error> {
        let lease = self.call(|api, store, handle| {
            api.call_try_acquire(store, handle, correlation_id, key, ttl_ms)
        })??;
        Ok(lease.map(|l| Lease::from_wit(l, self.clock())))
    }

    /// Waits up to `timeout_ms` for the lock, returning the lease.
    pub fn acquire(
        &mut self,
        correlation_id: Option<&str>,
        key: &[u8],
        ttl_ms: i64,
        timeout_ms: i64,
    ) -> Result<Lease, Error> {
        let lease = self.call(|api, store, handle| {
            api.call_acquire(store, handle, correlation_id, key, ttl_ms, timeout_ms)
        })??;
        Ok(Lease::from_wit(lease, self.clock()))
    }

    /// Prolongs `lease` to `ttl_ms` from now if it is still held (owner-checked, restart-safe);
    /// a lease no longer held fails with `LOCK_LOST`.
    pub fn extend(
        &mut self,
        correlation_id: Option<&str>,
        lease: &Lease,
        ttl_ms: i64,
    ) -> Result<Lease, Error> {
        let wit = lease.to_wit(self.clock());
        let extended = self.call(|api, store, handle| {
            api.call_extend(store, handle, correlation_id, &wit, ttl_ms)
        })??;
        Ok(Lease::from_wit(extended, self.clock()))
    }

    /// Releases `lease` (from this or another process). `true` if this call deleted it.
    pub fn release(&mut self, correlation_id: Option<&str>, lease: &Lease) -> Result<bool, Error> {
        let wit = lease.to_wit(self.clock());
        Ok(self.call(|api, store, handle| api.call_release(store, handle, correlation_id, &wit))??)
    }
}
