"""The engine and the compiled component: once per process, cached on disk.

Compiling the component takes tens of milliseconds with cranelift; a one-shot script would pay it
on every start. The compiled code is cached with the Rust host's rules, because loading it is
running native code: the cache directory (``$MEMLOCK_CACHE_DIR``, else
``$XDG_CACHE_HOME/memlock``, else ``~/.cache/memlock``; empty disables caching) is used only if it
is owned by this user and not writable by group or others (created with mode 0700); an entry is
loaded only if it is a regular file (not a symlink), ours, and not writable by others;
entries are written with mode 0600 through a new file and a rename. A cache that fails these
checks is skipped with a warning, and the component is compiled in memory.
"""

from __future__ import annotations

import os
import stat
import threading
import warnings
from typing import Optional, Tuple

from wasmtime import Engine
from wasmtime.component import Component

from ._fastpath import installed_version

_lock = threading.Lock()
_loaded: Optional[Tuple[Engine, Component]] = None


def component() -> Tuple[Engine, Component]:
    """The process-wide engine and compiled component."""
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = _load()
        return _loaded


#: The composed component, shipped inside the package (read by path: ``importlib.resources``
#: would add ~10 ms of imports to every process start).
WASM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "memlock.wasm")


def wasm_bytes() -> bytes:
    with open(WASM, "rb") as file:
        return file.read()


def _load() -> Tuple[Engine, Component]:
    engine = Engine()
    wasm = wasm_bytes()
    directory = _cache_dir()
    if directory is None:
        return engine, Component(engine, wasm)
    digest = _digest(wasm + f"wasmtime-py {installed_version()}".encode())
    entry = os.path.join(directory, f"memlock-py-{digest[:32]}.cwasm")
    if _trusted(entry):
        try:
            # By path: wasmtime maps the file (0.4 ms) where reading and copying it takes ~10 ms.
            # The directory is ours and writable by nobody else, so the file checked is the one
            # loaded.
            return engine, Component.deserialize_file(engine, entry)
        except Exception:  # stale or damaged: compile afresh and replace it
            pass
    compiled = Component(engine, wasm)
    _write(directory, entry, bytes(compiled.serialize()))
    return engine, compiled


def _digest(data: bytes) -> str:
    """The cache key: BLAKE2b of the component and the wasmtime-py version (compiled code loads
    only into the wasmtime that made it). CPython's built-in BLAKE2 module, because ``hashlib``
    loads OpenSSL, which costs a one-shot process several milliseconds."""
    try:
        from _blake2 import blake2b
    except ImportError:  # another Python implementation
        from hashlib import blake2b
    return blake2b(data, digest_size=16).hexdigest()


def _cache_dir() -> Optional[str]:
    configured = os.environ.get("MEMLOCK_CACHE_DIR")
    if configured is not None:
        if configured == "":
            return None
        directory = configured
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        directory = os.path.join(base, "memlock")
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        info = os.stat(directory)
    except OSError as e:
        warnings.warn(f"memlock: cache directory {directory} unusable ({e}); compiling in memory")
        return None
    if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        warnings.warn(
            f"memlock: cache directory {directory} is not owned by you or is writable by others; "
            "compiling in memory"
        )
        return None
    return directory


def _trusted(path: str) -> bool:
    """An existing regular file (not a symlink) owned by us and writable by nobody else."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    if (
        not stat.S_ISREG(info.st_mode)
        or info.st_uid != os.geteuid()
        or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    ):
        warnings.warn(f"memlock: not loading {path}: not a file of yours, or writable by others")
        return False
    return True


def _write(directory: str, path: str, data: bytes) -> None:
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        try:  # a leftover of a crashed writer with our pid (containers: always pid 1)
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError:
        try:
            os.unlink(temporary)
        except OSError:
            pass
