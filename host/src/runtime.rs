//! The compiled component, shared by every lock instance of a process.
//!
//! Compiling the component with cranelift takes a noticeable fraction of a second, so a process
//! compiles it once ([`Runtime::shared`]) and keeps the machine code in a cache directory
//! ([`crate::cache`]); a later `memlock` process loads the cached code and starts in milliseconds.

use std::path::PathBuf;
use std::sync::OnceLock;

use std::sync::Arc;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine};

use crate::bindings::{Memlock, MemlockPre};
use crate::blocking::state::BlockingState;
use crate::cache;
use crate::error::Error;
use crate::state::HostState;

/// The component as built by `host/build.rs`, embedded in every binary that links this crate.
pub const COMPONENT_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/memlock.wasm"));

/// An engine with the component compiled and linked, ready to instantiate. Cloning shares both.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) pre: MemlockPre<HostState>,
    component: Component,
    /// The same component linked with synchronous imports, for [`crate::BlockingLock`]: linked
    /// on first use, so that programs that only use [`crate::Lock`] (the CLI) do not pay for it.
    blocking_pre: Arc<OnceLock<crate::blocking::bindings::MemlockPre<BlockingState>>>,
}

impl Runtime {
    /// The process-wide runtime, using the default cache directory.
    pub fn shared() -> Result<&'static Runtime, Error> {
        static SHARED: OnceLock<Runtime> = OnceLock::new();
        if let Some(runtime) = SHARED.get() {
            return Ok(runtime);
        }
        let runtime = Runtime::new(cache::default_dir())?;
        Ok(SHARED.get_or_init(|| runtime))
    }

    /// Compiles the component, or loads it from `cache_dir` when compiled there before.
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Self, Error> {
        let mut config = Config::new();
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        let engine = Engine::new(&config).map_err(Error::runtime)?;
        let component = cache::load_or_compile(&engine, COMPONENT_WASM, cache_dir.as_deref())?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(Error::runtime)?;
        Memlock::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
            .map_err(Error::runtime)?;
        let pre = linker.instantiate_pre(&component).map_err(Error::runtime)?;
        let pre = MemlockPre::new(pre).map_err(Error::runtime)?;
        Ok(Runtime {
            engine,
            pre,
            component,
            blocking_pre: Arc::default(),
        })
    }

    /// The component linked with synchronous imports (made on first use). The same engine and
    /// component serve both: whether a store runs on fibers is decided by the functions its
    /// linker holds, not by the engine.
    pub(crate) fn blocking_pre(
        &self,
    ) -> Result<&crate::blocking::bindings::MemlockPre<BlockingState>, Error> {
        if let Some(pre) = self.blocking_pre.get() {
            return Ok(pre);
        }
        let mut linker = Linker::<BlockingState>::new(&self.engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(Error::runtime)?;
        crate::blocking::bindings::Memlock::add_to_linker::<BlockingState, HasSelf<BlockingState>>(
            &mut linker,
            |state| state,
        )
        .map_err(Error::runtime)?;
        let pre = linker
            .instantiate_pre(&self.component)
            .map_err(Error::runtime)?;
        let pre = crate::blocking::bindings::MemlockPre::new(pre).map_err(Error::runtime)?;
        Ok(self.blocking_pre.get_or_init(|| pre))
    }
}
