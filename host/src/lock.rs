//! The typed async API: one [`Lock`] is one instance of the component with its own connections.
//!
//! Calls into an instance are serialised (a component instance runs one call at a time); for
//! concurrency, create several `Lock`s from one [`Runtime`] — they share the compiled code. If a
//! call's future is dropped mid-way (a caller's own timeout), the instance may be left inside the
//! call, so it is marked poisoned and every later call fails with a runtime error.

use std::sync::Arc;

use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::Instrument;
use wasmtime::Store;
use wasmtime::component::{ResourceAny, ResourceTable};
use wasmtime_wasi::WasiCtx;

use crate::bindings::Memlock;
use crate::discovery::{Discovery, MemoryDiscovery};
use crate::error::Error;
use crate::lease::Lease;
use crate::net::{Network, TokioNetwork};
use crate::runtime::Runtime;
use crate::state::HostState;

/// Longest blocking-acquire timeout the component accepts (2^40 ms, about 34 years): "forever".
pub const MAX_TIMEOUT_MS: i64 = 1 << 40;

/// What a lock instance's imports are backed by.
#[derive(Clone)]
pub struct Environment {
    pub network: Arc<dyn Network>,
    pub discovery: Arc<dyn Discovery>,
    /// Origin of the monotonic clock the component sees; leases' deadlines are relative to it.
    pub clock_origin: Instant,
    /// How fast the component's clock runs against tokio time (1.0 = true rate). The simulation
    /// sets it to model clock drift.
    pub clock_rate: f64,
    /// Seeds every random source the component can reach (WASI `random`, std's hash keys, owner
    /// tokens, jitter) for a reproducible run; `None` draws from the OS.
    pub random_seed: Option<u64>,
}

impl Default for Environment {
    fn default() -> Self {
        Environment {
            network: Arc::new(TokioNetwork),
            discovery: Arc::new(MemoryDiscovery::new()),
            clock_origin: crate::imports::process_origin(),
            clock_rate: 1.0,
            random_seed: None,
        }
    }
}

/// A WASI context that lets nothing ambient in: no environment, no files, no stdio; with a seed,
/// randomness and WASI's own clocks are deterministic too.
fn wasi_context(env: &Environment, shard: u64) -> WasiCtx {
    let mut builder = WasiCtx::builder();
    if let Some(seed) = env
        .random_seed
        .map(|s| s.wrapping_add(shard.wrapping_mul(0xa076_1d64_78bd_642f)))
    {
        use rand::SeedableRng;
        builder
            .secure_random(rand::rngs::StdRng::seed_from_u64(seed))
            .insecure_random(rand::rngs::StdRng::seed_from_u64(
                seed ^ 0x9e37_79b9_7f4a_7c15,
            ))
            .insecure_random_seed(u128::from(seed))
            .monotonic_clock(crate::imports::TokioMonotonicClock(env.clock_origin))
            .wall_clock(crate::imports::FixedWallClock);
    }
    builder.build()
}

struct Instance {
    store: Store<HostState>,
    bindings: Memlock,
    handle: ResourceAny,
    poisoned: bool,
}

/// pip-services `MemcachedLock`, running in the memlock component.
///
/// A `Lock` has one or more component instances ([`Lock::with_instances`]). Calls for different
/// keys run concurrently on different instances; every call for one key goes to the same instance
/// (by a hash of the key), so the seed API's `release_lock(key)` finds the lease `acquire_lock`
/// took. Configuration, `open` and `close` apply to all of them.
pub struct Lock {
    instances: Vec<Mutex<Instance>>,
    clock: crate::lease::ComponentClock,
}

/// Runs one call on instance `$shard` with poisoning around it.
macro_rules! call {
    ($self:ident, $shard:expr, $cid:expr, $method:ident ( $($arg:expr),* )) => {{
        let span = tracing::debug_span!("memlock", op = stringify!($method), correlation_id = $cid);
        async {
            let mut guard = $self.instances[$shard].lock().await;
            let instance = &mut *guard;
            if instance.poisoned {
                return Err(Error::runtime(wasmtime::Error::msg(
                    "this lock instance was interrupted inside a call; create a new Lock",
                )));
            }
            instance.poisoned = true;
            let result = instance
                .bindings
                .memlock_lock_lock()
                .memcached_lock()
                .$method(&mut instance.store, instance.handle $(, $arg)*)
                .await;
            instance.poisoned = result.is_err();
            tracing::trace!(ok = result.is_ok(), "returned");
            result.map_err(Error::runtime)
        }
        .instrument(span)
        .await?
    }};
}

impl Lock {
    /// A new, unconfigured instance with real TCP.
    pub async fn new(runtime: &Runtime) -> Result<Lock, Error> {
        Lock::with_environment(runtime, Environment::default()).await
    }

    /// A new lock with one component instance whose imports use `env`.
    pub async fn with_environment(runtime: &Runtime, env: Environment) -> Result<Lock, Error> {
        Lock::with_instances(runtime, env, 1).await
    }

    /// A new lock with `instances` component instances (at least 1), for concurrent callers.
    pub async fn with_instances(
        runtime: &Runtime,
        env: Environment,
        instances: usize,
    ) -> Result<Lock, Error> {
        let mut shards = Vec::with_capacity(instances.max(1));
        for shard in 0..instances.max(1) {
            shards.push(Mutex::new(
                Lock::instantiate(runtime, &env, shard as u64).await?,
            ));
        }
        Ok(Lock {
            instances: shards,
            clock: crate::lease::ComponentClock {
                origin: env.clock_origin,
                rate: env.clock_rate,
            },
        })
    }

    async fn instantiate(
        runtime: &Runtime,
        env: &Environment,
        shard: u64,
    ) -> Result<Instance, Error> {
        let state = HostState {
            wasi: wasi_context(env, shard),
            table: ResourceTable::new(),
            network: env.network.clone(),
            discovery: env.discovery.clone(),
            clock_origin: env.clock_origin,
            clock_rate: env.clock_rate,
        };
        let mut store = Store::new(&runtime.engine, state);
        let bindings = runtime
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(Error::runtime)?;
        let handle = bindings
            .memlock_lock_lock()
            .memcached_lock()
            .call_constructor(&mut store)
            .await
            .map_err(Error::runtime)?;
        Ok(Instance {
            store,
            bindings,
            handle,
            poisoned: false,
        })
    }

    /// The instance that serves `key`.
    fn shard(&self, key: &[u8]) -> usize {
        let hash = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        (hash % self.instances.len() as u64) as usize
    }

    /// pip-services `configure`: ConfigParams pairs (`connection.uri`, `options.timeout`, ...).
    pub async fn configure<K: AsRef<str>, V: AsRef<str>>(
        &self,
        config: &[(K, V)],
    ) -> Result<(), Error> {
        let pairs: Vec<(String, String)> = config
            .iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
            .collect();
        for shard in 0..self.instances.len() {
            call!(self, shard, None::<&str>, call_configure(&pairs))?;
        }
        Ok(())
    }

    /// pip-services `setReferences`, as locator descriptors.
    pub async fn set_references(&self, descriptors: &[String]) -> Result<(), Error> {
        for shard in 0..self.instances.len() {
            call!(self, shard, None::<&str>, call_set_references(descriptors))?;
        }
        Ok(())
    }

    pub async fn open(&self, correlation_id: Option<&str>) -> Result<(), Error> {
        for shard in 0..self.instances.len() {
            call!(self, shard, correlation_id, call_open(correlation_id))?;
        }
        Ok(())
    }

    pub async fn is_open(&self) -> Result<bool, Error> {
        Ok(call!(self, 0, None::<&str>, call_is_open()))
    }

    pub async fn close(&self, correlation_id: Option<&str>) -> Result<(), Error> {
        let mut result = Ok(());
        for shard in 0..self.instances.len() {
            if let Err(e) = call!(self, shard, correlation_id, call_close(correlation_id)) {
                result = result.and(Err(Error::Lock(e.into())));
            }
        }
        result
    }

    /// One attempt; `true` when this instance now holds `key` for `ttl_ms`.
    pub async fn try_acquire_lock(
        &self,
        correlation_id: Option<&str>,
        key: &[u8],
        ttl_ms: i64,
    ) -> Result<bool, Error> {
        Ok(call!(
            self,
            self.shard(key),
            correlation_id,
            call_try_acquire_lock(correlation_id, key, ttl_ms)
        )?)
    }

    /// Waits up to `timeout_ms`; then fails with `LOCK_TIMEOUT`.
    pub async fn acquire_lock(
        &self,
        correlation_id: Option<&str>,
        key: &[u8],
        ttl_ms: i64,
        timeout_ms: i64,
    ) -> Result<(), Error> {
        Ok(call!(
            self,
            self.shard(key),
            correlation_id,
            call_acquire_lock(correlation_id, key, ttl_ms, timeout_ms)
        )?)
    }

    /// Releases this instance's lease on `key`; a no-op if it holds none.
    pub async fn release_lock(
        &self,
        correlation_id: Option<&str>,
        key: &[u8],
    ) -> Result<(), Error> {
        Ok(call!(
            self,
            self.shard(key),
            correlation_id,
            call_release_lock(correlation_id, key)
        )?)
    }

    /// One attempt, returning the lease; `None` when the key is held by someone else.
    pub async fn try_acquire(
        &self,
        correlation_id: Option<&str>,
        key: &[u8],
        ttl_ms: i64,
    ) -> Result<Option<Lease>, Error> {
        let lease = call!(
            self,
            self.shard(key),
            correlation_id,
            call_try_acquire(correlation_id, key, ttl_ms)
        )?;
        Ok(lease.map(|l| Lease::from_wit(l, self.clock)))
    }

    /// Waits up to `timeout_ms` for the lock, returning the lease.
    pub async fn acquire(
        &self,
        correlation_id: Option<&str>,
        key: &[u8],
        ttl_ms: i64,
        timeout_ms: i64,
    ) -> Result<Lease, Error> {
        let lease = call!(
            self,
            self.shard(key),
            correlation_id,
            call_acquire(correlation_id, key, ttl_ms, timeout_ms)
        )?;
        Ok(Lease::from_wit(lease, self.clock))
    }

    /// Prolongs `lease` to `ttl_ms` from now if it is still held (owner-checked, restart-safe).
    /// Returns the updated lease; a lease no longer held fails with `LOCK_LOST`.
    pub async fn extend(
        &self,
        correlation_id: Option<&str>,
        lease: &Lease,
        ttl_ms: i64,
    ) -> Result<Lease, Error> {
        let wit = lease.to_wit(self.clock);
        let extended = call!(
            self,
            self.shard(&lease.key),
            correlation_id,
            call_extend(correlation_id, &wit, ttl_ms)
        )?;
        Ok(Lease::from_wit(extended, self.clock))
    }

    /// Releases `lease` (from this or another process). `true` if this call deleted it; `false`
    /// if it had expired, was released already, or the key now belongs to someone else.
    pub async fn release(
        &self,
        correlation_id: Option<&str>,
        lease: &Lease,
    ) -> Result<bool, Error> {
        let wit = lease.to_wit(self.clock);
        Ok(call!(
            self,
            self.shard(&lease.key),
            correlation_id,
            call_release(correlation_id, &wit)
        )?)
    }
}
