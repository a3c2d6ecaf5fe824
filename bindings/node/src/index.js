// memlock for Node.js: pip-services' MemcachedLock over the memlock WebAssembly component — the
// same .wasm the Rust host and the `memlock` CLI run, transpiled by jco.
export { MemcachedLock } from './lock.js';
export { Lease } from './lease.js';
export * from './errors.js';
