"""One instance of the component: its store, its exports, and the one import Python serves.

The component embedded here is the lock component the Rust host runs, composed with memlock's
WASI adapter (``wasi-adapter/``): sockets and the clock are served inside wasmtime by its WASI
0.2 implementation, so a lock operation is one call from Python into wasm and nothing back.
Only ``discovery`` (pip-services' ``IDiscovery``, rarely called) and ``interrupt`` (asked every
50 ms while a blocking acquire sleeps) are Python: ``interrupt`` answers the instance's
``interrupt`` flag, which ``MemcachedLock.close`` and a SIGINT during a blocking call set
(``lock._sigint_deferred``), so a wait ends promptly with ``CANCELLED``, holding nothing.

An instance runs one call at a time (a wasmtime store is single-threaded); ``MemcachedLock``
keeps a pool of them. ctypes releases the GIL while wasm runs, so instances in several threads
run in parallel.
"""

from __future__ import annotations

import time
from typing import Any, Callable, List, Optional, Sequence, Set, Tuple

from wasmtime import Store, WasiConfig, _ffi as ffi
from wasmtime.component import Linker, Record, Variant

from . import errors
from ._fastpath import ArgumentError, Export, patch
from ._runtime import component
from ._tls import TlsBridge

_LOCK = "memlock:lock/lock@0.1.0"
_METHODS = (
    "configure",
    "set-references",
    "open",
    "is-open",
    "close",
    "try-acquire-lock",
    "acquire-lock",
    "release-lock",
    "try-acquire",
    "acquire",
    "release",
    "extend",
)

#: ``resolve-all``'s Python side: (trace id, key) -> connections as (name, value) pairs, or an
#: error message.
Resolver = Callable[[Optional[str], str], Any]

#: ``credentials.lookup``'s Python side: (trace id, store key) -> the credential (a
#: ``CredentialParams``, a dict or pairs), or None when no store knows the key.
Lookup = Callable[[Optional[str], str], Any]


class Instance:
    """A component instance with one ``memcached-lock`` resource."""

    def __init__(self, resolve: Resolver, lookup: Lookup):
        engine, compiled = component()
        patch()
        self.clock_origin_ns = time.monotonic_ns()
        wasi = WasiConfig()
        # Sockets are opened by the component itself; loopback and any other address.
        ffi.wasi_config_inherit_network(wasi.ptr())
        ffi.wasi_config_allow_ip_name_lookup(wasi.ptr(), True)
        self.store = Store(engine)
        #: The TLS streams this instance's component opened (WASI has no TLS).
        self.tls = TlsBridge()
        self.store.set_wasi(wasi)
        linker = Linker(engine)
        linker.add_wasip2()
        with linker.root() as root:
            with root.add_instance("memlock:lock/discovery@0.1.0") as discovery:
                discovery.add_func("resolve-all", _resolve_all(resolve))
            with root.add_instance("memlock:lock/credentials@0.1.0") as credentials:
                credentials.add_func("lookup", _lookup(lookup))
            with root.add_instance("memlock:lock/tls-bridge@0.1.0") as bridge:
                bridge.add_func("open", self.tls.open)
                bridge.add_func("exchange", self.tls.exchange)
                bridge.add_func("send", self.tls.send)
                bridge.add_func("receive", self.tls.receive)
                bridge.add_func("close", self.tls.close)
            with root.add_instance("memlock:lock/interrupt@0.1.0") as interrupt:
                interrupt.add_func("interrupted", self._interrupted)
        instance = linker.instantiate(self.store, compiled)
        interface = instance.get_export_index(self.store, _LOCK)

        def export(name: str) -> Any:
            index = instance.get_export_index(self.store, name, interface)
            func = instance.get_func(self.store, index) if index is not None else None
            if func is None:
                raise errors.runtime_failure(None, RuntimeError(f"the component lacks {name}"))
            return Export(func, self.store)

        self._funcs = {m: export(f"[method]memcached-lock.{m}") for m in _METHODS}
        self._handle = export("[constructor]memcached-lock")(self.store)
        #: Set when a call trapped: the instance's state is unknown and it must not be reused.
        self.poisoned = False
        #: Keys whose seed-API lease this instance keeps (guarded by its lock's pool lock).
        self.held: Set[bytes] = set()
        #: Set when it left its pool: it takes no more calls.
        self.retired = False
        #: Set to stop a blocking wait in progress (the lock is closing).
        self.interrupt = False
        #: Set when the lock's setup changed during a call: resync when the call returns.
        self.stale = False

    def call(self, method: str, trace_id: Optional[str], *args: Any) -> Any:
        """Calls ``method``; a WIT ``lock-error`` raises its pip-services exception. A trap
        raises ``InternalException`` (code ``RUNTIME``) and poisons the instance; an argument
        that does not fit the WIT type raises ``BadRequestException`` (``INVALID_ARGUMENT``)
        and leaves it usable."""
        try:
            value = self._funcs[method](self.store, self._handle, *args)
        except ArgumentError as e:
            raise errors.invalid_input(trace_id, "INVALID_ARGUMENT", str(e)) from e
        except Exception as e:  # a trap (WasmtimeError), or an import that raised
            self.poisoned = True
            raise errors.runtime_failure(trace_id, e) from e
        if isinstance(value, Variant):
            if value.tag == "err":
                raise errors.from_lock_error(value.payload)
            return value.payload
        if isinstance(value, Record) and hasattr(value, "category") and hasattr(value, "code"):
            raise errors.from_lock_error(value)
        return value

    def _interrupted(self, _store: Any) -> bool:
        return self.interrupt

    def drop(self) -> None:
        try:
            self._handle.drop(self.store)
        except Exception:
            pass
        self.tls.close_all()


def _resolve_all(resolve: Resolver) -> Callable[..., Any]:
    def resolve_all(_store: Any, trace_id: Optional[str], key: str) -> Any:
        # An exception here would trap the instance: every failure becomes the WIT error.
        try:
            connections = resolve(trace_id, key)
            return [
                [(str(name), str(value)) for name, value in _pairs(connection)]
                for connection in connections
            ]
        except Exception as e:
            # An untagged result: a string lowers to its `err` case.
            return f"{type(e).__name__}: {e}"

    return resolve_all


def _lookup(lookup: Lookup) -> Callable[..., Any]:
    def lookup_credential(_store: Any, trace_id: Optional[str], key: str) -> Any:
        # As in resolve-all: a failure is the WIT error (a string), never a trap. None is the
        # `none` of the option; the pairs its `some`.
        try:
            credential = lookup(trace_id, key)
            if credential is None:
                return None
            return [(str(name), str(value)) for name, value in _pairs(credential)]
        except Exception as e:
            return f"{type(e).__name__}: {e}"

    return lookup_credential


def _pairs(connection: Any) -> List[Tuple[str, Any]]:
    if hasattr(connection, "items"):
        return [(k, v) for k, v in connection.items() if v is not None]
    return list(connection)


def config_pairs(config: Any) -> List[Tuple[str, str]]:
    """ConfigParams, a dict, or (key, value) pairs -> pairs of strings."""
    if config is None:
        return []
    items: Sequence[Tuple[Any, Any]]
    if hasattr(config, "items"):
        items = list(config.items())
    else:
        items = list(config)
    return [(str(k), _text(v)) for k, v in items if v is not None]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
