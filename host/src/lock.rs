//! The typed async API: a [`Lock`] is one or more instances of the component behind async methods.
//!
//! A component instance runs one call at a time, so a `Lock` has several kinds of instance:
//! - **home instances** (one by default, more with [`Lock::with_instances`]): every call for a key
//!   goes to the same one (by a hash of the key), so the seed API's `release_lock(key)` finds the
//!   lease `acquire_lock` took there;
//! - **spare instances** for `extend`: an extend never waits behind another caller's call (a
//!   blocking acquire can hold a home instance for its whole timeout), which is what keeps a
//!   [`crate::LeaseGuard`] renewing. Spares are made on demand and kept idle for reuse.
//!
//! Every instance is set up alike: the `Lock` remembers the last successful `configure`,
//! `set_references` and `open`, and replays them into each instance it makes.
//!
//! **Cancellation.** Dropping a call's future is routine (`tokio::time::timeout`, `select!`). The
//! call then finishes in a task of its own ([`crate::cancel`]): a blocking acquire stops at its
//! next pause, a round trip on the wire completes within `options.timeout`, and whatever the
//! cancelled call acquired is released, owner-checked. The next call for that instance waits for
//! that, no longer. An instance left unusable (a trap, or a future dropped outside any tokio
//! runtime) is replaced by a fresh one on its next use; the seed API's leases it held are then
//! forgotten and expire with their ttl.

use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio::time::Instant;
use tracing::Instrument;
use wasmtime::Store;
use wasmtime::component::{ResourceAny, ResourceTable};
use wasmtime_wasi::WasiCtx;

use crate::bindings::{self, Memlock};
use crate::cancel::{Cancel, Detached};
use crate::credentials::{CredentialStore, MemoryCredentialStore};
use crate::discovery::{Discovery, MemoryDiscovery};
use crate::error::Error;
use crate::lease::Lease;
use crate::net::{Network, TokioNetwork};
use crate::runtime::Runtime;
use crate::state::HostState;

/// Longest blocking-acquire timeout the component accepts (2^40 ms, about 34 years): "forever".
pub use memlock_guest::lock::MAX_TIMEOUT_MS;

/// What a lock instance's imports are backed by.
#[derive(Clone)]
pub struct Environment {
    pub network: Arc<dyn Network>,
    pub discovery: Arc<dyn Discovery>,
    /// Answers `credential.store_key` (with a `*:credential-store:*:*:1.0` reference).
    pub credential_store: Arc<dyn CredentialStore>,
    /// Origin of the monotonic clock the component sees; leases' deadlines are relative to it.
    pub clock_origin: Instant,
    /// How fast the component's clock runs against tokio time (1.0 = true rate). The simulation
    /// sets it to model clock drift.
    pub clock_rate: f64,
    /// Seeds every random source the component can reach (WASI `random`: owner tokens, jitter,
    /// incarnations) for a reproducible run; `None` draws from the OS.
    pub random_seed: Option<u64>,
}

impl Default for Environment {
    fn default() -> Self {
        Environment {
            network: Arc::new(TokioNetwork),
            discovery: Arc::new(MemoryDiscovery::new()),
            credential_store: Arc::new(MemoryCredentialStore::new()),
            clock_origin: crate::imports::process_origin(),
            clock_rate: 1.0,
            random_seed: None,
        }
    }
}

/// A WASI context that lets nothing ambient in: no environment, no files, no stdio; with a seed,
/// randomness and WASI's own clocks are deterministic too.
pub(crate) fn wasi_context(random_seed: Option<u64>, clock_origin: Instant, shard: u64) -> WasiCtx {
    let mut builder = WasiCtx::builder();
    if let Some(seed) =
        random_seed.map(|s| s.wrapping_add(shard.wrapping_mul(0xa076_1d64_78bd_642f)))
    {
        use rand::SeedableRng;
        builder
            .secure_random(rand::rngs::StdRng::seed_from_u64(seed))
            .insecure_random(rand::rngs::StdRng::seed_from_u64(
                seed ^ 0x9e37_79b9_7f4a_7c15,
            ))
            .insecure_random_seed(u128::from(seed))
            .monotonic_clock(crate::imports::TokioMonotonicClock(clock_origin))
            .wall_clock(crate::imports::FixedWallClock);
    }
    builder.build()
}

struct Instance {
    store: Store<HostState>,
    bindings: Memlock,
    handle: ResourceAny,
    /// Set while a call runs, cleared when it returns: still set afterwards means the call trapped
    /// or was dropped midway, and the instance must be replaced.
    poisoned: bool,
    /// The [`Setup::generation`] it was set up under.
    generation: u64,
}

/// A `configure` and a `set_references` (also what a [`crate::BlockingLock`] replays).
#[derive(Clone, Default)]
pub(crate) struct Configuration {
    pub(crate) config: Option<Vec<(String, String)>>,
    pub(crate) references: Option<Vec<String>>,
}

/// What new instances replay to be set up like the home instances.
#[derive(Clone, Default)]
struct Setup {
    /// The last successful `configure` and `set_references`.
    latest: Configuration,
    /// While open: what the home instances were opened with (a later `configure` takes effect at
    /// the next `open`, so a new instance must open with this, not with `latest`).
    opened: Option<Configuration>,
    /// Bumped by every change: an instance made before it is not reused as a spare.
    generation: u64,
}

/// Idle spare instances kept at most.
const MAX_IDLE_SPARES: usize = 8;
/// Spare instances in use at most: an extend beyond this many at once waits for one to return.
const MAX_SPARES: usize = 16;

/// What every instance of one `Lock` shares: how to make another one, and the idle spares.
struct Shared {
    runtime: Runtime,
    env: Environment,
    setup: std::sync::Mutex<Setup>,
    /// Instances made so far; numbers each one's random seed.
    made: std::sync::atomic::AtomicU64,
    spares: std::sync::Mutex<Vec<Instance>>,
    /// One permit per spare instance in use.
    spare_permits: Arc<tokio::sync::Semaphore>,
}

impl Shared {
    fn setup(&self) -> std::sync::MutexGuard<'_, Setup> {
        self.setup.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spares(&self) -> std::sync::MutexGuard<'_, Vec<Instance>> {
        self.spares.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a setup change; instances set up the old way are no longer reused as spares.
    fn update(&self, change: impl FnOnce(&mut Setup)) {
        let mut setup = self.setup();
        change(&mut setup);
        setup.generation += 1;
        drop(setup);
        self.spares().clear();
    }

    /// A new instance, set up like the home instances.
    async fn make(&self) -> Result<Instance, Error> {
        let setup = self.setup().clone();
        let shard = self.made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut instance = instantiate(&self.runtime, &self.env, shard, setup.generation).await?;
        let inst = &mut instance;
        let api = inst.bindings.memlock_lock_lock().memcached_lock();
        let configuration = setup.opened.as_ref().unwrap_or(&setup.latest);
        if let Some(config) = &configuration.config {
            api.call_configure(&mut inst.store, inst.handle, config)
                .await
                .map_err(Error::runtime)??;
        }
        if let Some(references) = &configuration.references {
            api.call_set_references(&mut inst.store, inst.handle, references)
                .await
                .map_err(Error::runtime)??;
        }
        if setup.opened.is_some() {
            api.call_open(&mut inst.store, inst.handle, None)
                .await
                .map_err(Error::runtime)??;
        }
        Ok(instance)
    }

    /// Replaces an instance that a trap or a lost call left unusable.
    async fn heal(&self, instance: &mut Instance) -> Result<(), Error> {
        if instance.poisoned {
            tracing::warn!("replacing a component instance left unusable by an interrupted call");
            *instance = self.make().await?;
        }
        Ok(())
    }
}

async fn instantiate(
    runtime: &Runtime,
    env: &Environment,
    shard: u64,
    generation: u64,
) -> Result<Instance, Error> {
    let state = HostState {
        wasi: wasi_context(env.random_seed, env.clock_origin, shard),
        table: ResourceTable::new(),
        network: env.network.clone(),
        discovery: env.discovery.clone(),
        credential_store: env.credential_store.clone(),
        clock_origin: env.clock_origin,
        clock_rate: env.clock_rate,
        cancel: Arc::default(),
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
        generation,
    })
}

/// Which instance a call runs on.
enum Slot {
    Home(Arc<Mutex<Instance>>),
    Spare,
}

/// An instance a call has to itself.
enum Taken {
    Home(OwnedMutexGuard<Instance>),
    /// Goes back to the idle spares when dropped, unless poisoned or set up the old way.
    Spare(
        Option<Box<Instance>>,
        Arc<Shared>,
        /// Held while in use; returned on drop.
        #[allow(dead_code)]
        tokio::sync::OwnedSemaphorePermit,
    ),
}

impl Slot {
    async fn take(self, shared: &Arc<Shared>) -> Result<Taken, Error> {
        match self {
            Slot::Home(instance) => Ok(Taken::Home(instance.lock_owned().await)),
            Slot::Spare => {
                let permit = Arc::clone(&shared.spare_permits)
                    .acquire_owned()
                    .await
                    .map_err(Error::runtime)?;
                let idle = shared.spares().pop();
                let instance = match idle {
                    Some(instance) => instance,
                    None => shared.make().await?,
                };
                Ok(Taken::Spare(
                    Some(Box::new(instance)),
                    Arc::clone(shared),
                    permit,
                ))
            }
        }
    }
}

impl std::ops::Deref for Taken {
    type Target = Instance;
    fn deref(&self) -> &Instance {
        match self {
            Taken::Home(guard) => guard,
            Taken::Spare(instance, ..) => instance.as_ref().expect("present until dropped"),
        }
    }
}

impl std::ops::DerefMut for Taken {
    fn deref_mut(&mut self) -> &mut Instance {
        match self {
            Taken::Home(guard) => guard,
            Taken::Spare(instance, ..) => instance.as_mut().expect("present until dropped"),
        }
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        if let Taken::Spare(instance, shared, _) = self
            && let Some(instance) = instance.take()
            && !instance.poisoned
            && instance.generation == shared.setup().generation
        {
            let mut spares = shared.spares();
            if spares.len() < MAX_IDLE_SPARES {
                spares.push(*instance);
            }
        }
    }
}

/// What to give back when a call whose caller gave up has acquired something.
enum Undo {
    Nothing,
    /// Release the lease the call returned (owner-checked).
    Lease,
    /// Release the seed-API lease the call took on this key.
    Key(Vec<u8>),
}

/// What a call's answer acquired, for [`Undo`].
trait Acquired {
    fn lease(&self) -> Option<&bindings::Lease> {
        None
    }
    fn holds(&self) -> bool {
        false
    }
}

impl Acquired for bool {}
impl Acquired for Result<(), bindings::LockError> {
    fn holds(&self) -> bool {
        self.is_ok()
    }
}
impl Acquired for Result<bool, bindings::LockError> {
    fn holds(&self) -> bool {
        matches!(self, Ok(true))
    }
}
impl Acquired for Result<Option<bindings::Lease>, bindings::LockError> {
    fn lease(&self) -> Option<&bindings::Lease> {
        self.as_ref().ok().and_then(Option::as_ref)
    }
}
impl Acquired for Result<bindings::Lease, bindings::LockError> {
    fn lease(&self) -> Option<&bindings::Lease> {
        self.as_ref().ok()
    }
}

impl Undo {
    async fn run(self, inst: &mut Instance, cid: Option<&str>, answer: &impl Acquired) {
        let api = inst.bindings.memlock_lock_lock().memcached_lock();
        let released = match (self, answer.lease()) {
            (Undo::Lease, Some(lease)) => api
                .call_release(&mut inst.store, inst.handle, cid, lease)
                .await
                .map(|r| r.map(|_| ())),
            (Undo::Key(key), _) if answer.holds() => {
                api.call_release_lock(&mut inst.store, inst.handle, cid, &key)
                    .await
            }
            _ => return,
        };
        match released {
            Ok(Ok(())) => tracing::debug!("released what a cancelled call acquired"),
            Ok(Err(e)) => tracing::warn!(
                code = ?e.code,
                "cannot release what a cancelled call acquired; it expires with its ttl"
            ),
            Err(e) => {
                inst.poisoned = true;
                tracing::warn!(error = %e, "cannot release what a cancelled call acquired; it expires with its ttl")
            }
        }
    }
}

/// pip-services `MemcachedLock`, running in the memlock component (see the module docs for how
/// calls map to instances).
pub struct Lock {
    home: Vec<Arc<Mutex<Instance>>>,
    shared: Arc<Shared>,
    clock: crate::lease::ComponentClock,
}

/// Runs one call: on the instance `$slot` names, with its result's acquisitions undone if the
/// caller gives up first (`$undo`). `$cid` is an owned `Option<String>`; the arguments are
/// evaluated inside the call's own task, so they must use owned values.
macro_rules! call {
    ($self:ident, $slot:expr, $cid:ident, $undo:expr, $method:ident ( $($arg:expr),* )) => {{
        let slot: Slot = $slot;
        let undo: Undo = $undo;
        let shared = Arc::clone(&$self.shared);
        let cancel = Arc::new(Cancel::default());
        let signal = Arc::clone(&cancel);
        let span = tracing::debug_span!(
            "memlock",
            op = stringify!($method),
            correlation_id = $cid.as_deref()
        );
        let work = async move {
            let mut taken = slot.take(&shared).await?;
            if signal.is_cancelled() {
                return Err(Error::runtime(wasmtime::Error::msg("cancelled before it started")));
            }
            shared.heal(&mut taken).await?;
            let inst: &mut Instance = &mut taken;
            inst.store.data_mut().cancel = Arc::clone(&signal);
            inst.poisoned = true;
            let result = inst
                .bindings
                .memlock_lock_lock()
                .memcached_lock()
                .$method(&mut inst.store, inst.handle $(, $arg)*)
                .await;
            inst.poisoned = result.is_err();
            tracing::debug!(ok = result.is_ok(), "returned");
            let answer = result.map_err(Error::runtime)?;
            if signal.is_cancelled() {
                undo.run(inst, $cid.as_deref(), &answer).await;
            }
            Ok(answer)
        }
        .instrument(span);
        Detached::new(work, cancel).await?
    }};
}

impl Lock {
    /// A new, unconfigured lock with one home instance and real TCP.
    pub async fn new(runtime: &Runtime) -> Result<Lock, Error> {
        Lock::with_environment(runtime, Environment::default()).await
    }

    /// A new lock with one home instance whose imports use `env`.
    pub async fn with_environment(runtime: &Runtime, env: Environment) -> Result<Lock, Error> {
        Lock::with_instances(runtime, env, 1).await
    }

    /// A new lock with `instances` home instances (at least 1), for concurrent callers.
    pub async fn with_instances(
        runtime: &Runtime,
        env: Environment,
        instances: usize,
    ) -> Result<Lock, Error> {
        let clock = crate::lease::ComponentClock {
            origin: env.clock_origin,
            rate: env.clock_rate,
        };
        let shared = Arc::new(Shared {
            runtime: runtime.clone(),
            env,
            setup: std::sync::Mutex::default(),
            made: std::sync::atomic::AtomicU64::new(0),
            spares: std::sync::Mutex::default(),
            spare_permits: Arc::new(tokio::sync::Semaphore::new(MAX_SPARES)),
        });
        let mut home = Vec::with_capacity(instances.max(1));
        for _ in 0..instances.max(1) {
            home.push(Arc::new(Mutex::new(shared.make().await?)));
        }
        Ok(Lock {
            home,
            shared,
            clock,
        })
    }

    /// The home instance that serves `key`.
    fn home_for(&self, key: &[u8]) -> Slot {
        let hash = memlock_guest::driver::sharding::fnv1a(key);
        Slot::Home(Arc::clone(
            &self.home[(hash % self.home.len() as u64) as usize],
        ))
    }

    fn home(&self, index: usize) -> Slot {
        Slot::Home(Arc::clone(&self.home[index]))
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
        for index in 0..self.home.len() {
            let (cid, pairs) = (None::<String>, pairs.clone());
            call!(
                self,
                self.home(index),
                cid,
                Undo::Nothing,
                call_configure(&pairs)
            )?;
        }
        self.shared
            .update(|setup| setup.latest.config = Some(pairs));
        Ok(())
    }

    /// pip-services `setReferences`, as locator descriptors.
    pub async fn set_references(&self, descriptors: &[String]) -> Result<(), Error> {
        for index in 0..self.home.len() {
            let (cid, descriptors) = (None::<String>, descriptors.to_vec());
            call!(
                self,
                self.home(index),
                cid,
                Undo::Nothing,
                call_set_references(&descriptors)
            )?;
        }
        self.shared
            .update(|setup| setup.latest.references = Some(descriptors.to_vec()));
        Ok(())
    }

    pub async fn open(&self, correlation_id: Option<&str>) -> Result<(), Error> {
        for index in 0..self.home.len() {
            let cid = correlation_id.map(str::to_owned);
            call!(
                self,
                self.home(index),
                cid,
                Undo::Nothing,
                call_open(cid.as_deref())
            )?;
        }
        // Opening an open lock changes nothing, in the component as here.
        self.shared.update(|setup| {
            if setup.opened.is_none() {
                setup.opened = Some(setup.latest.clone());
            }
        });
        Ok(())
    }

    pub async fn is_open(&self) -> Result<bool, Error> {
        let cid = None::<String>;
        Ok(call!(
            self,
            self.home(0),
            cid,
            Undo::Nothing,
            call_is_open()
        ))
    }

    pub async fn close(&self, correlation_id: Option<&str>) -> Result<(), Error> {
        self.shared.update(|setup| setup.opened = None);
        let mut result = Ok(());
        for index in 0..self.home.len() {
            let cid = correlation_id.map(str::to_owned);
            if let Err(e) = call!(
                self,
                self.home(index),
                cid,
                Undo::Nothing,
                call_close(cid.as_deref())
            ) {
                result = result.and(Err(Error::Lock(e.into())));
            }
        }
        result
    }

    /// One attempt; `true` when this `Lock` now holds `key` for `ttl_ms` (the seed's API: the
    /// lease is kept by the key's home instance).
    pub async fn try_acquire_lock(
        &self,
        correlation_id: Option<&str>,
        key: &[u8],
        ttl_ms: i64,
    ) -> Result<bool, Error> {
        let (cid, key) = (correlation_id.map(str::to_owned), key.to_vec());
        Ok(call!(
            self,
            self.home_for(&key),
            cid,
            Undo::Key(key.clone()),
            call_try_acquire_lock(cid.as_deref(), &key, ttl_ms)
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
        let (cid, key) = (correlation_id.map(str::to_owned), key.to_vec());
        Ok(call!(
            self,
            self.home_for(&key),
            cid,
            Undo::Key(key.clone()),
            call_acquire_lock(cid.as_deref(), &key, ttl_ms, timeout_ms)
        )?)
    }

    /// Releases the lease this `Lock` holds on `key` (kept by the key's home instance); a no-op
    /// if it holds none.
    pub async fn release_lock(
        &self,
        correlation_id: Option<&str>,
        key: &[u8],
    ) -> Result<(), Error> {
        let (cid, key) = (correlation_id.map(str::to_owned), key.to_vec());
        Ok(call!(
            self,
            self.home_for(&key),
            cid,
            Undo::Nothing,
            call_release_lock(cid.as_deref(), &key)
        )?)
    }

    /// One attempt, returning the lease; `None` when the key is held by someone else.
    pub async fn try_acquire(
        &self,
        correlation_id: Option<&str>,
        key: &[u8],
        ttl_ms: i64,
    ) -> Result<Option<Lease>, Error> {
        let (cid, key) = (correlation_id.map(str::to_owned), key.to_vec());
        let lease = call!(
            self,
            self.home_for(&key),
            cid,
            Undo::Lease,
            call_try_acquire(cid.as_deref(), &key, ttl_ms)
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
        let (cid, key) = (correlation_id.map(str::to_owned), key.to_vec());
        let lease = call!(
            self,
            self.home_for(&key),
            cid,
            Undo::Lease,
            call_acquire(cid.as_deref(), &key, ttl_ms, timeout_ms)
        )?;
        Ok(Lease::from_wit(lease, self.clock))
    }

    /// Prolongs `lease` to `ttl_ms` from now if it is still held (owner-checked, restart-safe).
    /// Returns the updated lease; a lease no longer held fails with `LOCK_LOST`. Runs on a spare
    /// instance: it never waits behind another caller's call.
    pub async fn extend(
        &self,
        correlation_id: Option<&str>,
        lease: &Lease,
        ttl_ms: i64,
    ) -> Result<Lease, Error> {
        let (cid, wit) = (correlation_id.map(str::to_owned), lease.to_wit(self.clock));
        let extended = call!(
            self,
            Slot::Spare,
            cid,
            Undo::Nothing,
            call_extend(cid.as_deref(), &wit, ttl_ms)
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
        let (cid, wit) = (correlation_id.map(str::to_owned), lease.to_wit(self.clock));
        Ok(call!(
            self,
            self.home_for(&wit.key),
            cid,
            Undo::Nothing,
            call_release(cid.as_deref(), &wit)
        )?)
    }
}
