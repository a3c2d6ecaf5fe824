"""``MemcachedLock``: pip-services' class, method for method, over the memlock component.

The seed's methods keep their names, signatures and errors; a pip-services user switches by
changing one import. Leases (``try_acquire``, ``acquire``, ``release``, ``extend``, ``hold``) are
the owner-checked API underneath.

Threads: one ``MemcachedLock`` may be used from any number of threads; each call borrows a
component instance from the lock's pool (``_pool``). The seed methods call the component's own
seed API (``try-acquire-lock`` returns a bool: no lease record crosses into Python, which is what
makes them cheaper than the lease methods); the lease stays in the instance that took it, and
``release_lock`` goes back to that instance.

Setup follows the seed: ``configure`` and ``set_references`` take effect at the next ``open``
(for every instance alike); ``close`` closes every instance and interrupts blocking waits.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator, List, Optional, Tuple, Union

from . import errors
from ._instance import Instance, config_pairs
from ._pool import Pool
from .lease import Lease, from_wit, to_wit

Key = Union[str, bytes]


def trace_id(context: Any) -> Optional[str]:
    """A pip-services ``IContext``, a trace-id string, or ``None`` -> the trace id."""
    if context is None or isinstance(context, str):
        return context
    getter = getattr(context, "get", None)
    if callable(getter):
        value = getter("trace_id") or getter("traceId")
        return None if value is None else str(value)
    return str(context)


def _key(key: Key) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


_S64 = range(-(1 << 63), 1 << 63)


def _ms(value: Any, name: str, code: str, tid: Optional[str]) -> int:
    """A millisecond argument as the WIT's s64: out of range is an error here, because wasmtime-py
    would silently truncate it (2**64 + 1000 would become 1000)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise errors.invalid_input(tid, code, f"{name} must be an integer of milliseconds, got {value!r}") from None
    if number not in _S64:
        raise errors.invalid_input(tid, code, f"{name} {number} ms is out of range")
    return number


@contextlib.contextmanager
def _sigint_deferred(instance: Instance) -> Iterator[None]:
    """While a blocking call runs in the main thread, a SIGINT only notes itself and interrupts
    the call (which ends with CANCELLED, holding nothing); the previous handler then runs, so
    Ctrl-C raises KeyboardInterrupt as usual. Python runs signal handlers only in Python code,
    and the one Python code a waiting call runs is wasmtime-py's callback wrapper, which
    swallows a KeyboardInterrupt: hence the handler that only takes note."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):
        yield
        return
    received: List[Any] = []

    def note(signum: int, frame: Any) -> None:
        received.append((signum, frame))
        instance.interrupt = True

    signal.signal(signal.SIGINT, note)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            previous(*received[0])


class _Setup:
    """What every instance must have: the configuration and references in force since the last
    ``open`` (``None`` while closed), and a generation that changes with them."""

    def __init__(self) -> None:
        self.config: List[Tuple[str, str]] = []
        self.descriptors: List[str] = []
        self.opened: Optional[Tuple[List[Tuple[str, str]], List[str]]] = None
        self.generation = 0


class MemcachedLock:
    """A distributed lock on memcached: pip-services' ``MemcachedLock``, on the memlock
    component. Configuration keys, references and errors are the seed's; see README."""

    def __init__(self) -> None:
        self._setup = _Setup()
        self._setup_lock = threading.Lock()
        self._discoveries: List[Any] = []
        self._credential_stores: List[Any] = []
        self._pool = Pool(lambda: Instance(self._resolve, self._lookup), self._sync)

    # -- pip-services: IConfigurable, IReferenceable, IOpenable ---------------------------

    def configure(self, config: Any) -> None:
        """``ConfigParams`` (or a dict, or pairs) with the seed's keys; a bad value raises
        ``ConfigException`` naming the key. Takes effect at the next ``open``."""
        pairs = config_pairs(config)
        # Checked on a new instance, not one in use; it then joins the pool, to be set up
        # at its first call like any other.
        checker = Instance(self._resolve, self._lookup)
        try:
            checker.call("configure", None, pairs)
        except BaseException:
            checker.drop()
            raise
        self._pool.adopt(checker)
        with self._setup_lock:
            self._setup.config = pairs

    def set_references(self, references: Any) -> None:
        """pip-services ``IReferences``: ``*:discovery:*:*:1.0`` services resolve
        ``connection.discovery_key`` and ``*:credential-store:*:*:1.0`` stores resolve
        ``credential.store_key`` (at the next ``open``)."""

        def find(kind: str) -> List[Any]:
            if references is None:
                return []
            try:
                from pip_services4_components.refer import Descriptor

                return list(references.get_optional(Descriptor("*", kind, "*", "*", "1.0")))
            except ImportError:
                getter = getattr(references, "get_optional", None)
                return list(getter(f"*:{kind}:*:*:1.0")) if callable(getter) else []

        discoveries, stores = find("discovery"), find("credential-store")
        with self._setup_lock:
            self._discoveries = discoveries
            self._credential_stores = stores
            self._setup.descriptors = [
                descriptor
                for descriptor, found in (
                    ("*:discovery:*:*:1.0", discoveries),
                    ("*:credential-store:*:*:1.0", stores),
                )
                if found
            ]

    def open(self, context: Any = None) -> None:
        """Opens the lock with the configuration and references set so far; an open lock is
        reopened with them."""
        tid = trace_id(context)
        with self._setup_lock:
            previous = self._setup.opened
            self._setup.opened = (list(self._setup.config), list(self._setup.descriptors))
            self._setup.generation += 1
        try:
            with self._pool.lend(tid):
                pass
        except BaseException:
            with self._setup_lock:
                self._setup.opened = previous
                self._setup.generation += 1
            raise

    def is_open(self) -> bool:
        return self._setup.opened is not None

    def close(self, context: Any = None) -> None:
        """Closes every instance; a blocking acquire in another thread ends with
        ``InvalidStateException`` ``CANCELLED``. Seed leases stay known: after a reopen,
        ``release_lock`` releases them."""
        with self._setup_lock:
            self._setup.opened = None
            self._setup.generation += 1
        self._pool.close_all(trace_id(context))

    # -- pip-services: ILock ---------------------------------------------------------------

    def try_acquire_lock(self, context: Any, key: str, ttl: int) -> bool:
        """One attempt; ``True`` when this lock now holds ``key`` for ``ttl`` ms."""
        tid = trace_id(context)
        raw = _key(key)
        ttl = _ms(ttl, "ttl", "INVALID_TTL", tid)
        with self._pool.lend(tid) as instance:
            taken = bool(instance.call("try-acquire-lock", tid, tid, raw, ttl))
            if taken and raw not in instance.held:
                self._pool.remember(raw, instance)
            return taken

    def acquire_lock(self, context: Any, key: str, ttl: int, timeout: int) -> None:
        """Waits up to ``timeout`` ms for ``key``; then ``ConflictException`` ``LOCK_TIMEOUT``
        (the seed's message, with the key in its details)."""
        tid = trace_id(context)
        raw = _key(key)
        ttl = _ms(ttl, "ttl", "INVALID_TTL", tid)
        timeout = _ms(timeout, "timeout", "INVALID_ARGUMENT", tid)
        with self._pool.lend(tid, blocking=True) as instance, _sigint_deferred(instance):
            try:
                instance.call("acquire-lock", tid, tid, raw, ttl, timeout)
            except errors.ApplicationException as e:
                if e.code == "LOCK_TIMEOUT":
                    e.with_details("key", raw.decode("utf-8", "replace"))
                raise
            self._pool.remember(raw, instance)

    def release_lock(self, context: Any, key: str) -> None:
        """Releases this lock's lease on ``key`` (owner-checked); a no-op if it holds none."""
        tid = trace_id(context)
        raw = _key(key)
        with self._pool.lend(tid, key=raw) as instance:
            instance.call("release-lock", tid, tid, raw)  # NOT_OPENED, or nothing to do
            self._pool.forget(raw, instance)

    # -- leases ----------------------------------------------------------------------------

    def try_acquire(self, key: Key, ttl: int, context: Any = None) -> Optional[Lease]:
        """One attempt: the lease, or ``None`` when someone else holds ``key``."""
        tid = trace_id(context)
        ttl = _ms(ttl, "ttl", "INVALID_TTL", tid)
        with self._pool.lend(tid) as instance:
            record = instance.call("try-acquire", tid, tid, _key(key), ttl)
            return None if record is None else from_wit(record, instance.clock_origin_ns)

    def acquire(self, key: Key, ttl: int, timeout: int, context: Any = None) -> Lease:
        """Waits up to ``timeout`` ms for ``key``; ``ConflictException`` ``LOCK_TIMEOUT``."""
        tid = trace_id(context)
        ttl = _ms(ttl, "ttl", "INVALID_TTL", tid)
        timeout = _ms(timeout, "timeout", "INVALID_ARGUMENT", tid)
        with self._pool.lend(tid, blocking=True) as instance, _sigint_deferred(instance):
            record = instance.call("acquire", tid, tid, _key(key), ttl, timeout)
            return from_wit(record, instance.clock_origin_ns)

    def release(self, lease: Union[Lease, str], context: Any = None) -> bool:
        """Releases ``lease`` (a :class:`Lease` or a handle, from any process). ``True`` when this
        call deleted it; ``False`` when it was gone or someone else's (untouched)."""
        tid = trace_id(context)
        lease = Lease.from_handle(lease, tid) if isinstance(lease, str) else lease
        with self._pool.lend(tid) as instance:
            return bool(instance.call("release", tid, tid, to_wit(lease, instance.clock_origin_ns, tid)))

    def extend(self, lease: Union[Lease, str], ttl: int, context: Any = None) -> Lease:
        """Prolongs a held lease to ``ttl`` ms from now (compare-and-set, never a touch); a lease
        no longer held raises ``ConflictException`` ``LOCK_LOST``."""
        tid = trace_id(context)
        lease = Lease.from_handle(lease, tid) if isinstance(lease, str) else lease
        with self._pool.lend(tid) as instance:
            record = instance.call(
                "extend", tid, tid, to_wit(lease, instance.clock_origin_ns, tid),
                _ms(ttl, "ttl", "INVALID_TTL", tid),
            )
            return from_wit(record, instance.clock_origin_ns)

    def hold(self, key: Key, ttl: int = 10_000, timeout: int = 10_000, context: Any = None):
        """``with lock.hold(key, ttl=…, timeout=…) as held:`` acquires, renews every third of the
        ttl while the block runs, and releases on exit; see :class:`memlock.guard.Held`."""
        from .guard import hold

        return hold(self, key, ttl, timeout, context)

    # -- instances ---------------------------------------------------------------------------

    def _sync(self, instance: Instance, seen: int, tid: Optional[str]) -> int:
        """Brings ``instance`` to the setup in force: closed, or opened with the configuration and
        references of the last ``open``."""
        if seen == self._setup.generation:  # the common case, read without the lock
            return seen
        with self._setup_lock:
            generation, opened = self._setup.generation, self._setup.opened
        if instance.call("is-open", tid):
            instance.call("close", tid, tid)
        if opened is not None:
            config, descriptors = opened
            instance.call("configure", tid, config)
            instance.call("set-references", tid, descriptors)
            instance.call("open", tid, tid)
        return generation

    def _lookup(self, tid: Optional[str], key: str) -> Any:
        for store in self._credential_stores:
            credential = store.lookup(tid, key)
            if credential is not None:
                return credential
        return None

    def _resolve(self, tid: Optional[str], key: str) -> List[Any]:
        connections: List[Any] = []
        for discovery in self._discoveries:
            connections.extend(discovery.resolve_all(tid, key) or [])
        return connections
