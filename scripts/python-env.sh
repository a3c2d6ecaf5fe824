#!/usr/bin/env bash
# The virtualenv the Python binding is tested in: target/python, with the pinned test
# requirements. Made once; remade when the requirements change. Nothing is installed globally.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/python
requirements=bindings/python/requirements-test.txt
stamp="$venv/.requirements"
if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$stamp"; then
    exit 0
fi
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    echo "python3 with venv and pip is needed for the Python binding's tests (Debian: apt-get install python3-venv)" >&2
    exit 1
fi
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
cp "$requirements" "$stamp"
