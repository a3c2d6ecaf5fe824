//! A directory of compiled components, keyed by the component's bytes and the engine's settings.
//!
//! Loading compiled code is `unsafe` in wasmtime: the file is native code, trusted to be what
//! wasmtime wrote. Whoever can write the cache can run code inside memlock, so the cache is used
//! only when nobody but the user could have written it:
//! - the directory must be owned by the user (effective uid) and not writable by group or others;
//!   it is created with mode 0700;
//! - an entry must be a regular file owned by the user and not writable by group or others; it is
//!   opened without following symlinks and checked on the open descriptor, then read from it;
//! - entries are written to a fresh temporary file created with mode 0600 and renamed into place.
//!
//! A directory that fails the check is not used at all (one warning per process; the component is
//! compiled in memory). An entry that fails it, or fails to load, is replaced by a fresh compile.
//! Names are a SHA-256 over the wasm and wasmtime's compatibility hash.

use std::fs::{File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Once;

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

/// Why a cache path is not trusted.
#[derive(Debug, thiserror::Error)]
enum Untrusted {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("owned by uid {owner}, not by this user (uid {user})")]
    Owner { owner: u32, user: u32 },
    #[error("writable by group or others (mode {0:o})")]
    Writable(u32),
    #[error("not a regular file")]
    NotAFile,
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Only the user can have written what has this metadata.
fn check_private(meta: &std::fs::Metadata) -> Result<(), Untrusted> {
    let user = effective_uid();
    if meta.uid() != user {
        return Err(Untrusted::Owner {
            owner: meta.uid(),
            user,
        });
    }
    if meta.mode() & 0o022 != 0 {
        return Err(Untrusted::Writable(meta.mode() & 0o7777));
    }
    Ok(())
}

/// Creates `dir` (mode 0700) if missing and checks that only the user can write it.
fn private_dir(dir: &Path) -> Result<(), Untrusted> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    check_private(&std::fs::metadata(dir)?)
}

/// Reads an entry through a descriptor whose owner and mode were checked.
fn read_private_file(file: &Path) -> Result<Vec<u8>, Untrusted> {
    let mut opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(file)?;
    let meta = opened.metadata()?;
    if !meta.is_file() {
        return Err(Untrusted::NotAFile);
    }
    check_private(&meta)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    opened.read_to_end(&mut bytes)?;
    Ok(bytes)
}

pub fn load_or_compile(
    engine: &Engine,
    wasm: &[u8],
    dir: Option<&Path>,
) -> Result<Component, Error> {
    let Some(dir) = dir else {
        return Component::new(engine, wasm).map_err(Error::runtime);
    };
    if let Err(why) = private_dir(dir) {
        static WARNED: Once = Once::new();
        WARNED.call_once(|| {
            tracing::warn!(dir = %dir.display(), %why, "compiled-component cache not used: only its owner may write it");
        });
        return Component::new(engine, wasm).map_err(Error::runtime);
    }
    let file = cache_file(engine, wasm, dir);
    match read_private_file(&file) {
        // SAFETY: the bytes were written by `Component::serialize` of this same wasmtime build
        // (the name includes its compatibility hash) into a directory and file that only this
        // user can write (checked on the open descriptor above).
        Ok(bytes) => match unsafe { Component::deserialize(engine, &bytes) } {
            Ok(component) => return Ok(component),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "cached component unusable; recompiling")
            }
        },
        Err(Untrusted::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(why) => {
            tracing::warn!(file = %file.display(), %why, "cached component not trusted; recompiling")
        }
    }
    let component = Component::new(engine, wasm).map_err(Error::runtime)?;
    if let Err(e) = store(&component, &file) {
        tracing::debug!(dir = %dir.display(), error = %e, "cannot cache the compiled component");
    }
    Ok(component)
}

/// Writes `component` to a new temporary file (mode 0600, never an existing one) and renames it
/// over `file`, so a reader sees a whole entry or none.
fn store(component: &Component, file: &Path) -> wasmtime::Result<()> {
    let bytes = component.serialize()?;
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .and_then(|mut out: File| {
            out.write_all(&bytes)?;
            out.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, file));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(written?)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    /// The smallest component there is: the binary form of `(component)`.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

    fn scratch_dir(name: &str, mode: u32) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("memlock-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).expect("chmod");
        dir
    }

    fn entries(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").path())
            .collect()
    }

    #[test]
    fn entries_are_written_private_to_the_user() {
        let engine = Engine::default();
        let dir = scratch_dir("private", 0o700);
        load_or_compile(&engine, EMPTY_COMPONENT, Some(&dir)).expect("compile");
        let written = entries(&dir);
        assert_eq!(written.len(), 1, "{written:?}");
        let meta = std::fs::metadata(&written[0]).expect("stat");
        assert_eq!(meta.mode() & 0o777, 0o600, "{:o}", meta.mode());
        // And it is used the next time.
        load_or_compile(&engine, EMPTY_COMPONENT, Some(&dir)).expect("load");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_directory_others_can_write_is_not_used() {
        let engine = Engine::default();
        for mode in [0o777, 0o770, 0o1777] {
            let dir = scratch_dir("shared", mode);
            load_or_compile(&engine, EMPTY_COMPONENT, Some(&dir)).expect("compiles in memory");
            assert_eq!(entries(&dir), Vec::<PathBuf>::new(), "mode {mode:o}");
            std::fs::remove_dir_all(&dir).expect("clean up");
        }
    }

    #[test]
    fn an_entry_others_could_have_written_is_not_loaded() {
        let engine = Engine::default();
        let dir = scratch_dir("foreign", 0o700);
        let file = cache_file(&engine, EMPTY_COMPONENT, &dir);
        let compiled = Component::new(&engine, EMPTY_COMPONENT).expect("compile");
        type Plant = Box<dyn Fn(&Path)>;
        let mut planted: Vec<(&str, Plant)> = vec![(
            "group/world-writable",
            Box::new(|f: &Path| {
                std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o666)).expect("chmod")
            }),
        )];
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            planted.push((
                "owned by another user",
                Box::new(|f: &Path| std::os::unix::fs::chown(f, Some(4242), None).expect("chown")),
            ));
        }
        for (what, plant) in planted {
            std::fs::write(&file, compiled.serialize().expect("serialize")).expect("plant");
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
            plant(&file);
            load_or_compile(&engine, EMPTY_COMPONENT, Some(&dir)).expect("compiles instead");
            // Not loaded: compiled afresh and written back as the user's own private entry.
            let meta = std::fs::metadata(&file).expect("stat");
            // SAFETY: geteuid has no preconditions.
            assert_eq!(meta.uid(), unsafe { libc::geteuid() }, "{what}");
            assert_eq!(meta.mode() & 0o777, 0o600, "{what}: {:o}", meta.mode());
        }
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
