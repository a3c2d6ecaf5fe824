//! Builds the component (`guest/`, target `wasm32-wasip2`) and hands it to the host crate, so a
//! plain `cargo build` produces a `memlock` binary with the lock inside.
//!
//! The guest is built by a nested cargo with its own target directory: the outer build holds the
//! lock on the main one, and the wasm target must not inherit the host's flags.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("host/ sits in the workspace root")
        .to_path_buf();
    // Relative to this package, not absolute: cargo resolves relative paths against the package
    // root each time it checks them, so a target/ copied to another checkout watches that
    // checkout's guest. (It keeps this build script's output under a name that does not depend
    // on the checkout's path; with absolute paths the copy kept watching the old checkout and
    // silently embedded the old component.)
    for path in [
        "../guest/src",
        "../guest/Cargo.toml",
        "../wit",
        "../Cargo.toml",
        "../Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("wasm-guest");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    require_target(&cargo);

    let mut build = Command::new(&cargo);
    build
        .args([
            "build",
            "--locked",
            "-p",
            "memlock-guest",
            "--target",
            TARGET,
            "--profile",
            "guest",
        ])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_MAKEFLAGS",
    ] {
        build.env_remove(var);
    }
    let status = build
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cargo}: {e}"));
    if !status.success() {
        panic!("building the memlock component (guest/) for {TARGET} failed; see the errors above");
    }
    let wasm = target_dir
        .join(TARGET)
        .join("guest")
        .join("memlock_guest.wasm");
    let dest = out_dir.join("memlock.wasm");
    std::fs::copy(&wasm, &dest)
        .unwrap_or_else(|e| panic!("cannot copy {} to {}: {e}", wasm.display(), dest.display()));
}

/// Fails with the one command that fixes a missing wasm target.
fn require_target(cargo: &str) {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let installed = sysroot
        .map(|s| {
            Path::new(&s)
                .join("lib/rustlib")
                .join(TARGET)
                .join("lib")
                .is_dir()
        })
        .unwrap_or(false);
    if !installed {
        panic!(
            "the Rust target {TARGET} is not installed; run `rustup target add {TARGET}` (or `just setup`) and build again ({cargo})"
        );
    }
}
