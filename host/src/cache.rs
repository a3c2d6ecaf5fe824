//! A directory of compiled components, keyed by the component's bytes and the engine's settings.
//!
//! Loading compiled code is `unsafe` in wasmtime because the file is trusted to be what wasmtime
//! wrote. The cache therefore lives in a per-user directory, files are written atomically (temp
//! file + rename) and named by a SHA-256 over the wasm and wasmtime's compatibility hash, and a file
//! that fails to load is replaced by a fresh compile.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::Error;

/// `$MEMLOCK_CACHE_DIR`, else `$XDG_CACHE_HOME/memlock`, else `~/.cache/memlock`; `None` (no
/// caching) when `MEMLOCK_CACHE_DIR` is empty or no home is known.
pub fn default_dir() -> Option<PathBuf> {
    match std::env::var_os("MEMLOCK_CACHE_DIR") {
        Some(dir) if dir.is_empty() => None,
        Some(dir) => Some(PathBuf::from(dir)),
        None => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|d| d.join("memlock")),
    }
}

/// Feeds `Hash` output into SHA-256.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn cache_file(engine: &Engine, wasm: &[u8], dir: &Path) -> PathBuf {
    let mut hasher = ShaHasher(Sha256::new());
    hasher.write(wasm);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let digest = hasher.0.finalize();
    let name: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    dir.join(format!("memlock-{name}.cwasm"))
}

pub fn load_or_compile(
    engine: &Engine,
    wasm: &[u8],
    dir: Option<&Path>,
) -> Result<Component, Error> {
    let Some(dir) = dir else {
        return Component::new(engine, wasm).map_err(Error::runtime);
    };
    let file = cache_file(engine, wasm, dir);
    if file.exists() {
        // SAFETY: the file was written by `Component::serialize` of this same wasmtime build (the
        // name includes its compatibility hash) into the user's own cache directory.
        match unsafe { Component::deserialize_file(engine, &file) } {
            Ok(component) => return Ok(component),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "cached component unusable; recompiling")
            }
        }
    }
    let component = Component::new(engine, wasm).map_err(Error::runtime)?;
    if let Err(e) = store(&component, dir, &file) {
        tracing::debug!(dir = %dir.display(), error = %e, "cannot cache the compiled component");
    }
    Ok(component)
}

fn store(component: &Component, dir: &Path, file: &Path) -> wasmtime::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes = component.serialize()?;
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, file)?;
    Ok(())
}
