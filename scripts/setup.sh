#!/usr/bin/env bash
# Installs what memlock needs to build and test, or says exactly what is missing.
set -euo pipefail

missing=0

if ! rustc --print sysroot >/dev/null 2>&1; then
    echo "setup: no Rust toolchain found; install rustup (https://rustup.rs) and Rust 1.95+" >&2
    exit 1
fi
if [ ! -d "$(rustc --print sysroot)/lib/rustlib/wasm32-wasip2" ]; then
    if command -v rustup >/dev/null 2>&1; then
        echo "setup: installing the wasm32-wasip2 Rust target"
        rustup target add wasm32-wasip2
    else
        echo "setup: the wasm32-wasip2 target is missing and rustup is not available; install it with your toolchain manager" >&2
        missing=1
    fi
fi

if ! command -v memcached >/dev/null 2>&1 && [ ! -x /usr/bin/memcached ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing memcached with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq memcached >/dev/null
    elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        echo "setup: installing memcached with sudo apt-get"
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq memcached >/dev/null
    else
        echo "setup: memcached is not installed. Install it, e.g. \`sudo apt-get install memcached\` (Debian/Ubuntu) or \`brew install memcached\` (macOS)" >&2
        missing=1
    fi
fi

exit "$missing"
