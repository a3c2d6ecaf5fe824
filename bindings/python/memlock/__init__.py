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
"""

from .errors import (
    PIP_SERVICES,
    ApplicationException,
    BadRequestException,
    ConfigException,
    ConflictException,
    ConnectionException,
    InternalException,
    InvalidStateException,
    InvocationException,
    UnknownException,
    UnsupportedException,
)
from .guard import Held
from .lease import Lease, ServerProcess
from .lock import MemcachedLock

__all__ = [
    "MemcachedLock",
    "Lease",
    "ServerProcess",
    "Held",
    "PIP_SERVICES",
    "ApplicationException",
    "BadRequestException",
    "ConfigException",
    "ConflictException",
    "ConnectionException",
    "InternalException",
    "InvalidStateException",
    "InvocationException",
    "UnknownException",
    "UnsupportedException",
]
