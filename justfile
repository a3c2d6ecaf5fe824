# memlock — `just demo` shows the lock working, `just test` runs every test.

set shell := ["bash", "-euo", "pipefail", "-c"]
# Recipe arguments reach commands as "$@", intact: a replay case contains `;`, a key may contain spaces.
set positional-arguments

# List the recipes.
default:
    @just --list

# Install what building and testing need: the wasm32-wasip2 target and memcached.
setup:
    scripts/setup.sh

# Build the memlock binary (release) and the component as target/memlock.wasm.
build: setup
    cargo build --release --locked -p memlock-host
    cp target/wasm-guest/wasm32-wasip2/guest/memlock_guest.wasm target/memlock.wasm
    @ls -l target/release/memlock target/memlock.wasm

# `memlock run` worker processes contend for one key on a real memcached (started for the demo
# unless MEMLOCK_SERVERS or --server names one); `just demo --help` for the knobs.
demo *ARGS: setup
    cargo build --locked -p memlock-host -p memlock-demo
    target/debug/memlock-demo "$@"

# Every test: formatting, lints (host and wasm target), unit and integration tests on real memcached.
test: setup
    cargo fmt --all -- --check
    cargo clippy --locked --workspace --all-targets -- -D warnings
    cargo clippy --locked -p memlock-guest --target wasm32-wasip2 -- -D warnings
    cargo test --locked --workspace

# Run the memlock CLI (dev build), e.g. `just memlock try-acquire job`.
memlock *ARGS:
    cargo build --quiet --locked -p memlock-host
    target/debug/memlock "$@"

# Deterministic simulation: the component under generated fault schedules
# (`just sim --seed N --cases N --clients N --servers N --faults all|none|kind,…`, `--replay CASE`).
sim *ARGS: setup
    cargo build --locked -p memlock-sim --bin sim
    target/debug/sim "$@"

# Lock cost against the one-round-trip floor, side by side in one run (release build).
bench: setup
    cargo build --release --locked -p memlock-host -p memlock-bench
    target/release/memlock-bench
