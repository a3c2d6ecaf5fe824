//! The Node rows: memlock's Node binding on the bench's memcached (`bindings/node/bench.js`):
//! one try+release cycle at a time, and 64 concurrent promises through one `MemcachedLock`.
//! They need `bindings/node` built (`just node-build`, which `just bench` runs).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::stats::Summary;

pub struct NodeRows {
    pub cycle: Summary,
    pub concurrent_cycles_per_s: f64,
}

/// `None`, with the reason on stderr, when Node or the built binding is missing or fails.
pub fn measure(addr: &str, iterations: usize) -> Option<NodeRows> {
    let package = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bindings/node");
    if !package.join("generated/memlock.js").exists() {
        eprintln!("bench: bindings/node is not built: the Node rows need `just node-build`");
        return None;
    }
    let output = Command::new("node")
        .current_dir(&package)
        .args(["bench.js", addr, &iterations.to_string()])
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "bench: node bench.js failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    let us = |path: &[&str]| -> Option<f64> {
        path.iter()
            .try_fold(&json, |v, k| v.get(*k))
            .and_then(serde_json::Value::as_f64)
    };
    Some(NodeRows {
        cycle: Summary {
            median: Duration::from_secs_f64(us(&["cycle", "median_us"])? / 1e6),
            p99: Duration::from_secs_f64(us(&["cycle", "p99_us"])? / 1e6),
        },
        concurrent_cycles_per_s: us(&["concurrent", "cycles_per_s"])?,
    })
}
