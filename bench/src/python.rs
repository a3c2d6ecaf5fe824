//! The Python rows: pip-services' own `MemcachedLock` against memlock's Python binding, both in
//! one Python process on the bench's memcached (`bindings/python/bench.py cycles`, interleaved
//! rounds), and each as a whole one-shot process (import, configure, open, try, release, close),
//! alternated. They need `target/python` (made by `just python-test` or `just bench`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::stats::{Summary, summarize};

pub struct PythonRows {
    pub pip_services_cycle: Summary,
    pub memlock_seed_cycle: Summary,
    pub memlock_lease_cycle: Summary,
    /// Where the time goes: one `mn` round trip from Python's socket module.
    pub python_floor: Summary,
    /// One export call that does no I/O (`is-open`).
    pub export_call: Summary,
    /// The two seed calls straight on an instance, without `MemcachedLock`'s wrapper.
    pub raw_seed_cycle: Summary,
    pub pip_services_oneshot: Summary,
    pub memlock_oneshot: Summary,
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `None`, with the reason on stderr, when the Python environment is missing or fails.
pub fn measure(addr: &str, iterations: usize, oneshots: usize) -> Option<PythonRows> {
    let root = repository();
    let python = root.join("target/python/bin/python");
    let script = root.join("bindings/python/bench.py");
    if !python.exists() {
        eprintln!(
            "bench: no {}: the Python rows need `just python-test` (or `just bench`)",
            python.display()
        );
        return None;
    }
    let cycles = Command::new(&python)
        .arg(&script)
        .args(["cycles", addr, &iterations.to_string()])
        .output()
        .ok()?;
    if !cycles.status.success() {
        eprintln!(
            "bench: {} cycles failed: {}",
            script.display(),
            String::from_utf8_lossy(&cycles.stderr)
        );
        return None;
    }
    let rows: serde_json::Value = serde_json::from_slice(&cycles.stdout).ok()?;
    let summary = |name: &str| -> Option<Summary> {
        let row = rows.get(name)?;
        let us = |field: &str| row.get(field).and_then(serde_json::Value::as_f64);
        Some(Summary {
            median: Duration::from_secs_f64(us("median_us")? / 1e6),
            p99: Duration::from_secs_f64(us("p99_us")? / 1e6),
        })
    };
    let (mut seed, mut ours) = (Vec::new(), Vec::new());
    for i in 0..oneshots + 2 {
        for (which, samples) in [("pip-services", &mut seed), ("memlock", &mut ours)] {
            let started = Instant::now();
            let status = Command::new(&python)
                .arg(&script)
                .args(["oneshot", which, addr])
                .status()
                .ok()?;
            if !status.success() {
                eprintln!("bench: one-shot {which} failed");
                return None;
            }
            if i >= 2 {
                samples.push(started.elapsed());
            }
        }
    }
    Some(PythonRows {
        pip_services_cycle: summary("pip-services")?,
        memlock_seed_cycle: summary("memlock seed")?,
        memlock_lease_cycle: summary("memlock lease")?,
        python_floor: summary("python floor")?,
        export_call: summary("export call")?,
        raw_seed_cycle: summary("raw seed")?,
        pip_services_oneshot: summarize(seed),
        memlock_oneshot: summarize(ours),
    })
}
