#!/usr/bin/env bash
# What the Node binding needs: Node >= 20.19 (jco's bundler) with npm. Says exactly what is
# missing; installs nothing globally (node_modules comes from bindings/node's lockfile).
set -euo pipefail
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "node and npm are needed for the Node binding's build and tests (Node >= 20.19; Debian: apt-get install nodejs npm)" >&2
    exit 1
fi
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
    echo "Node $(node --version) is too old for the Node binding: it needs >= 20.19" >&2
    exit 1
fi
