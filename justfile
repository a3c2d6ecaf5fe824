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

# Build the memlock binary (release), the component as target/memlock.wasm, and the component
# composed with its WASI adapter into the Python package (`pip install ./bindings/python` after).
build: setup component-wasi
    cargo build --release --locked -p memlock-host
    cp target/wasm-guest/wasm32-wasip2/guest/memlock_guest.wasm target/memlock.wasm
    @ls -l target/release/memlock target/memlock.wasm bindings/python/memlock/memlock.wasm

# The lock component with sockets and clock served inside wasm (wasi-adapter/, plugged in by
# memlock-compose), for hosts whose imports are costly to call: bindings/python/memlock/memlock.wasm.
component-wasi: setup
    cargo build --locked -p memlock-guest -p memlock-wasi-adapter --target wasm32-wasip2 --profile guest --target-dir target/wasm-guest
    cargo run --quiet --locked -p memlock-compose -- target/wasm-guest/wasm32-wasip2/guest/memlock_guest.wasm target/wasm-guest/wasm32-wasip2/guest/memlock_wasi_adapter.wasm bindings/python/memlock/memlock.wasm

# `memlock run` worker processes contend for one key on a real memcached (started for the demo
# unless MEMLOCK_SERVERS or --server names one); `just demo --help` for the knobs.
demo *ARGS: setup
    cargo build --locked -p memlock-host -p memlock-demo
    target/debug/memlock-demo "$@"

# Every test: formatting, lints (host and wasm target), unit and integration tests on real memcached.
test: setup
    cargo fmt --all -- --check
    cargo clippy --locked --workspace --all-targets -- -D warnings
    cargo clippy --locked -p memlock-guest -p memlock-wasi-adapter --target wasm32-wasip2 -- -D warnings
    cargo test --locked --workspace
    just python-test
    just node-test

# The Node binding: node_modules from the committed lockfile, the component transpiled by jco
# into bindings/node/generated.
node-build: component-wasi
    scripts/node-env.sh
    cd bindings/node && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build

# The Node binding's suite (node --test) against real memcached. The CLI it drives comes from
# `cargo test --no-run`: a `cargo build -p memlock-host` would build wasmtime a second time with
# another feature set.
node-test: node-build
    cargo test --locked --workspace --no-run --quiet
    cd bindings/node && node_modules/.bin/tsc -p test/types
    cd bindings/node && MEMLOCK_BIN=../../target/debug/memlock node --test --test-concurrency=1 test/

# The Python binding's suite (pytest) in target/python, against the package as pip installs it
# (the CLI it drives comes from `cargo test --no-run`, as for node-test).
python-test: component-wasi
    cargo test --locked --workspace --no-run --quiet
    scripts/python-env.sh
    target/python/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation --force-reinstall ./bindings/python
    MEMLOCK_BIN=target/debug/memlock target/python/bin/pytest -q -p no:cacheprovider bindings/python/tests

# Run the memlock CLI (dev build), e.g. `just memlock try-acquire job`.
memlock *ARGS:
    cargo build --quiet --locked -p memlock-host
    target/debug/memlock "$@"

# Deterministic simulation: the component under generated fault schedules
# (`just sim --seed N --cases N --clients N --servers N --faults all|none|kind,…`, `--replay CASE`),
# `--mode quorum` for quorum mode over 3-5 servers.
sim *ARGS: setup
    cargo build --locked -p memlock-sim --bin sim
    target/debug/sim "$@"

# Lock cost against the one-round-trip floor, side by side in one run (release build).
bench: setup component-wasi node-build
    cargo build --release --locked -p memlock-host -p memlock-bench
    scripts/python-env.sh
    target/python/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation --force-reinstall ./bindings/python
    target/release/memlock-bench
