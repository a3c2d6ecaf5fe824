"""memlock: a distributed lock on memcached, as a WebAssembly component, for Python.

A drop-in for pip-services' ``MemcachedLock`` (same methods, configuration keys and errors) that
runs the memlock component — the same ``.wasm`` the Rust host and the ``memlock`` CLI run — in
wasmtime. Releases are owner-checked and restart-safe, ttls below a second expire, keys cannot
inject commands, and every acquisition has a fencing token.

    from memlock import MemcachedLock

    lock = MemcachedLock()
    lock.configure({"connection.host": "localhost", "connection.port": 11211})
    lock.open(None)
    lock.acquire_lock(None, "key1", 3000, 1000)
    try:
        ...
    finally:
        lock.release_lock(None, "key1")

The exception classes (``memlock.ConflictException``, …) are pip-services' own when it is
installed; they are resolved on first use.
"""

from typing import Any

from . import errors as _errors
from .guard import Held
from .lease import Lease, ServerProcess
from .lock import MemcachedLock


def __getattr__(name: str) -> Any:
    if name in _errors.NAMES or name == "PIP_SERVICES":
        return _errors.classes()[name]
    raise AttributeError(f"module 'memlock' has no attribute {name!r}")


__all__ = ["MemcachedLock", "Lease", "ServerProcess", "Held", "PIP_SERVICES", *_errors.NAMES]
