//! What the two bench binaries share: the measured paths ([`latency`]: floor, peer, native core,
//! component, and how each is opened), the native host ([`native`]) and percentiles ([`stats`]).
//! `memlock-bench` measures them side by side; `profile` runs one of them for callgrind/perf.

pub mod latency;
pub mod native;
pub mod node;
pub mod python;
pub mod quorum;
pub mod security;
pub mod stats;
