"""Refuses to build a package without its component: `just build` puts it in memlock/."""

import os

from setuptools import setup

if not os.path.exists(os.path.join(os.path.dirname(os.path.abspath(__file__)), "memlock", "memlock.wasm")):
    raise SystemExit(
        "bindings/python/memlock/memlock.wasm is missing: run `just build` in the repository first "
        "(it builds the component and composes it with the WASI adapter)"
    )

setup()
