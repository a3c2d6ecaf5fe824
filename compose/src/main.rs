//! `memlock-compose LOCK.wasm ADAPTER.wasm OUT.wasm`: plugs the WASI adapter's `socket` and `clock`
//! exports into the lock component's imports of the same names (`wac`'s "plug"), and writes the
//! composite. The lock's bytes are embedded unchanged: the composite runs the very component the
//! Rust host runs, with its two chatty imports answered inside wasm.
//!
//! What remains imported is WASI (sockets, clocks, random, and what std asks for) and `discovery`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions, plug};

fn main() -> anyhow::Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [lock, adapter, out] = args.as_slice() else {
        bail!("usage: memlock-compose LOCK.wasm ADAPTER.wasm OUT.wasm");
    };
    let mut graph = CompositionGraph::new();
    let lock_package = Package::from_file("memlock:lock", None, lock, graph.types_mut())
        .with_context(|| format!("reading the lock component {}", lock.display()))?;
    let lock_package = graph.register_package(lock_package)?;
    let adapter_package =
        Package::from_file("memlock:wasi-adapter", None, adapter, graph.types_mut())
            .with_context(|| format!("reading the adapter component {}", adapter.display()))?;
    let adapter_package = graph.register_package(adapter_package)?;
    plug(&mut graph, vec![adapter_package], lock_package)
        .context("plugging the adapter's socket and clock into the lock")?;
    let bytes = graph.encode(EncodeOptions::default())?;
    std::fs::write(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    println!("{}: {} bytes", out.display(), bytes.len());
    Ok(())
}
