"""``MemcachedLock``: pip-services' class, method for method, over the memlock component.

The seed's methods keep their names, signatures and errors; a pip-services user switches by
changing one import. Leases (``try_acquire``, ``acquire``, ``release``, ``extend``, ``hold``) are
the owner-checked API underneath, and what the seed methods use.

Threads: one ``MemcachedLock`` may be used from any number of threads. Each call borrows an idle
component instance from the lock's pool, or makes one (configured, referenced and opened like
the others), and gives it back; nothing is shared between two calls in flight, and a blocking
``acquire`` never holds up another thread.

The seed methods call the component's own seed API (``try-acquire-lock`` returns a bool; no lease
record crosses into Python, which is what makes them cheaper than the lease methods): the lease
stays inside the instance that took it, and ``release_lock`` goes back to that instance, waiting
for it if another call is using it. An instance holding seed leases is never dropped from the pool.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from . import errors
from ._instance import Instance, config_pairs
from .lease import Lease, from_wit, to_wit

Key = Union[str, bytes]

#: How many idle instances a lock keeps (more are made while more calls are in flight).
_IDLE_INSTANCES = 8


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


class _Setup:
    """What every instance must have seen: the latest configure, references and open/close."""

    def __init__(self) -> None:
        self.config: Optional[List[Tuple[str, str]]] = None
        self.descriptors: List[str] = []
        self.opened = False
        self.generation = 0


class MemcachedLock:
    """A distributed lock on memcached: pip-services' ``MemcachedLock``, on the memlock
    component. Configuration keys, references and errors are the seed's; see README."""

    def __init__(self) -> None:
        self._setup = _Setup()
        self._setup_lock = threading.Lock()
        self._idle: List[Tuple[Instance, int]] = []
        self._idle_lock = threading.Lock()
        self._discoveries: List[Any] = []
        self._idle_returned = threading.Condition(self._idle_lock)
        #: Seed API: which instance holds each key's lease (guarded by ``_idle_lock``).
        self._holders: Dict[bytes, Instance] = {}

    # -- pip-services: IConfigurable, IReferenceable, IOpenable ---------------------------

    def configure(self, config: Any) -> None:
        """``ConfigParams`` (or a dict, or pairs) with the seed's keys; a bad value raises
        ``ConfigException`` naming the key."""
        pairs = config_pairs(config)
        with self._instance(None, sync=False) as instance:
            instance.call("configure", None, pairs)
        with self._setup_lock:
            self._setup.config = pairs
            self._setup.generation += 1

    def set_references(self, references: Any) -> None:
        """pip-services ``IReferences``: ``*:discovery:*:*:1.0`` services resolve
        ``connection.discovery_key``."""
        discoveries: List[Any] = []
        if references is not None:
            try:
                from pip_services4_components.refer import Descriptor

                discoveries = list(
                    references.get_optional(Descriptor("*", "discovery", "*", "*", "1.0"))
                )
            except ImportError:
                getter = getattr(references, "get_optional", None)
                discoveries = list(getter("*:discovery:*:*:1.0")) if callable(getter) else []
        descriptors = ["*:discovery:*:*:1.0"] if discoveries else []
        with self._setup_lock:
            self._discoveries = discoveries
            self._setup.descriptors = descriptors
            self._setup.generation += 1

    def open(self, context: Any = None) -> None:
        tid = trace_id(context)
        with self._setup_lock:
            self._setup.opened = True
            self._setup.generation += 1
        try:
            with self._instance(tid):
                pass
        except Exception:
            with self._setup_lock:
                self._setup.opened = False
                self._setup.generation += 1
            raise

    def is_open(self) -> bool:
        return self._setup.opened

    def close(self, context: Any = None) -> None:
        """Closes every idle instance; one still in a call is closed when it comes back."""
        with self._setup_lock:
            self._setup.opened = False
            self._setup.generation += 1
        with self._idle_lock:
            idle, self._idle = self._idle, []
            for instance, _ in idle:
                instance.retired = True
                for key in instance.held:
                    if self._holders.get(key) is instance:
                        del self._holders[key]
            self._idle_returned.notify_all()
        tid = trace_id(context)
        for instance, _ in idle:
            try:
                instance.call("close", tid, tid)
            finally:
                instance.drop()

    # -- pip-services: ILock ---------------------------------------------------------------

    def try_acquire_lock(self, context: Any, key: str, ttl: int) -> bool:
        """One attempt; ``True`` when this lock now holds ``key`` for ``ttl`` ms."""
        tid = trace_id(context)
        raw = _key(key)
        with self._instance(tid) as instance:
            taken = bool(instance.call("try-acquire-lock", tid, tid, raw, int(ttl)))
            if taken:
                self._remember(raw, instance)
            return taken

    def acquire_lock(self, context: Any, key: str, ttl: int, timeout: int) -> None:
        """Waits up to ``timeout`` ms for ``key``; then ``ConflictException`` ``LOCK_TIMEOUT``
        (the seed's message, with the key in its details)."""
        tid = trace_id(context)
        raw = _key(key)
        with self._instance(tid) as instance:
            try:
                instance.call("acquire-lock", tid, tid, raw, int(ttl), int(timeout))
            except errors.ApplicationException as e:
                if e.code == "LOCK_TIMEOUT" and hasattr(e, "with_details"):
                    e.with_details("key", raw.decode("utf-8", "replace"))
                raise
            self._remember(raw, instance)

    def release_lock(self, context: Any, key: str) -> None:
        """Releases this lock's lease on ``key`` (owner-checked); a no-op if it holds none."""
        tid = trace_id(context)
        raw = _key(key)
        with self._idle_lock:
            holder = self._holders.get(raw)
        with self._instance(tid, wanted=holder) as instance:
            instance.call("release-lock", tid, tid, raw)  # NOT_OPENED, or nothing to do
            with self._idle_lock:
                if self._holders.get(raw) is instance:
                    del self._holders[raw]
                    instance.held.discard(raw)

    def _remember(self, key: bytes, instance: Instance) -> None:
        with self._idle_lock:
            previous = self._holders.get(key)
            if previous is not None and previous is not instance:
                previous.held.discard(key)
            self._holders[key] = instance
            instance.held.add(key)

    # -- leases ----------------------------------------------------------------------------

    def try_acquire(self, key: Key, ttl: int, context: Any = None) -> Optional[Lease]:
        """One attempt: the lease, or ``None`` when someone else holds ``key``."""
        tid = trace_id(context)
        with self._instance(tid) as instance:
            record = instance.call("try-acquire", tid, tid, _key(key), int(ttl))
            return None if record is None else from_wit(record, instance.clock_origin_ns)

    def acquire(self, key: Key, ttl: int, timeout: int, context: Any = None) -> Lease:
        """Waits up to ``timeout`` ms for ``key``; ``ConflictException`` ``LOCK_TIMEOUT``."""
        tid = trace_id(context)
        with self._instance(tid) as instance:
            record = instance.call("acquire", tid, tid, _key(key), int(ttl), int(timeout))
            return from_wit(record, instance.clock_origin_ns)

    def release(self, lease: Union[Lease, str], context: Any = None) -> bool:
        """Releases ``lease`` (a :class:`Lease` or a handle, from any process). ``True`` when this
        call deleted it; ``False`` when it was gone or someone else's (untouched)."""
        tid = trace_id(context)
        lease = Lease.from_handle(lease, tid) if isinstance(lease, str) else lease
        with self._instance(tid) as instance:
            return bool(instance.call("release", tid, tid, to_wit(lease, instance.clock_origin_ns)))

    def extend(self, lease: Union[Lease, str], ttl: int, context: Any = None) -> Lease:
        """Prolongs a held lease to ``ttl`` ms from now (compare-and-set, never a touch); a lease
        no longer held raises ``ConflictException`` ``LOCK_LOST``."""
        tid = trace_id(context)
        lease = Lease.from_handle(lease, tid) if isinstance(lease, str) else lease
        with self._instance(tid) as instance:
            record = instance.call(
                "extend", tid, tid, to_wit(lease, instance.clock_origin_ns), int(ttl)
            )
            return from_wit(record, instance.clock_origin_ns)

    def hold(self, key: Key, ttl: int = 10_000, timeout: int = 10_000, context: Any = None):
        """``with lock.hold(key, ttl=…, timeout=…) as held:`` acquires, renews every third of the
        ttl while the block runs, and releases on exit; see :class:`memlock.guard.Held`."""
        from .guard import hold

        return hold(self, key, ttl, timeout, context)

    # -- instances -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _instance(
        self, tid: Optional[str], sync: bool = True, wanted: Optional[Instance] = None
    ) -> Iterator[Instance]:
        """An instance brought up to date with the setup, for one call: ``wanted`` (waiting for
        it while another call has it), or any idle one, or a new one."""
        taken: Optional[Tuple[Instance, int]] = None
        with self._idle_lock:
            if wanted is not None:
                while not (wanted.poisoned or wanted.retired):
                    taken = next((e for e in self._idle if e[0] is wanted), None)
                    if taken is not None:
                        self._idle.remove(taken)
                        break
                    self._idle_returned.wait()
            elif self._idle:
                taken = self._idle.pop()
        instance, seen = taken if taken else (Instance(self._resolve), -1)
        try:
            if sync:
                seen = self._sync(instance, seen, tid)
            yield instance
        finally:
            with self._idle_lock:
                keep = not instance.poisoned and (
                    instance.held or len(self._idle) < _IDLE_INSTANCES
                )
                if keep:
                    self._idle.append((instance, seen))
                else:
                    for key in instance.held:
                        if self._holders.get(key) is instance:
                            del self._holders[key]
                self._idle_returned.notify_all()
            if not keep:
                instance.drop()

    def _sync(self, instance: Instance, seen: int, tid: Optional[str]) -> int:
        with self._setup_lock:
            setup = self._setup
            generation, config, descriptors, opened = (
                setup.generation,
                setup.config,
                list(setup.descriptors),
                setup.opened,
            )
        if seen == generation:
            return seen
        if config is not None:
            instance.call("configure", tid, config)
        instance.call("set-references", tid, descriptors)
        if opened:
            if not instance.call("is-open", tid):
                instance.call("open", tid, tid)
        elif instance.call("is-open", tid):
            instance.call("close", tid, tid)
        return generation

    def _resolve(self, tid: Optional[str], key: str) -> List[Any]:
        connections: List[Any] = []
        for discovery in self._discoveries:
            connections.extend(discovery.resolve_all(tid, key) or [])
        return connections
