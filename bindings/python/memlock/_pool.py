"""Component instances lent to one call at a time, for a ``MemcachedLock`` used from many threads.

A wasmtime store runs one call at a time, so each call borrows an instance: an idle one, or a
new one when none is idle. Instances are brought up to date with the lock's setup (configure,
references, open/close) before they are lent, so every instance talks to the same servers.

The seed API keeps its leases inside the instance that took them (``holders``), and
``release_lock`` must go back to that instance. So that it never waits long for it:

- a blocking call (``acquire``, ``acquire_lock``) is never lent an instance that holds seed
  leases, so such an instance is only ever busy for one bounded round trip;
- an instance that holds seed leases is kept however many are idle.

An instance that leaves the pool (poisoned by a trap, or surplus) is ``retired``: anyone waiting
for it stops waiting, and its seed leases are forgotten (they expire with their ttl, as the
seed's do when its process dies). Closing the lock closes every instance but keeps those with
seed leases, which the component keeps across a close.
"""

from __future__ import annotations

import threading
from typing import Callable, Dict, List, Optional, Set, Tuple

from ._instance import Instance

#: Instances without seed leases kept idle; more are made while more calls are in flight.
IDLE_INSTANCES = 8


class Pool:
    def __init__(
        self,
        make: Callable[[], Instance],
        sync: Callable[[Instance, int, Optional[str]], int],
    ):
        self._make = make
        self._sync = sync
        self._lock = threading.Lock()
        self._returned = threading.Condition(self._lock)
        self._idle: List[Tuple[Instance, int]] = []
        self._busy: Set[Instance] = set()
        #: Seed API: the instance keeping each key's lease.
        self._holders: Dict[bytes, Instance] = {}

    def lend(
        self, tid: Optional[str], *, key: Optional[bytes] = None, blocking: bool = False
    ) -> "_Loan":
        """An up-to-date instance for one call (``with pool.lend(...) as instance``): the one
        keeping ``key``'s seed lease (waiting for it while another call has it), else an idle
        one (without seed leases for a ``blocking`` call), else a new one."""
        return _Loan(self, tid, key, blocking)

    def _take(self, key: Optional[bytes], blocking: bool) -> Tuple[Instance, int]:
        with self._lock:
            wanted = self._holders.get(key) if key is not None else None
            while wanted is not None and not wanted.retired:
                entry = next((e for e in self._idle if e[0] is wanted), None)
                if entry is not None:
                    self._idle.remove(entry)
                    self._busy.add(wanted)
                    wanted.interrupt = False
                    return entry
                self._returned.wait()
            for index in range(len(self._idle) - 1, -1, -1):
                entry = self._idle[index]
                if not (blocking and entry[0].held):
                    del self._idle[index]
                    self._busy.add(entry[0])
                    entry[0].interrupt = False
                    return entry
        instance = self._make()
        with self._lock:
            self._busy.add(instance)
        return instance, -1

    def _give_back(self, instance: Instance, seen: int, tid: Optional[str]) -> None:
        if instance.stale and not instance.poisoned:
            instance.stale = False
            try:
                seen = self._sync(instance, seen, tid)
            except Exception:
                instance.retired = True
        with self._lock:
            self._busy.discard(instance)
            surplus = not instance.held and len(self._idle) >= IDLE_INSTANCES
            keep = not (instance.poisoned or instance.retired or surplus)
            if keep:
                self._idle.append((instance, seen))
            else:
                self._forget_all(instance)
            self._returned.notify_all()
        if not keep:
            _discard(instance, tid)

    def adopt(self, instance: Instance) -> None:
        """Adds a new instance as idle (it is set up at its first call)."""
        with self._lock:
            if len(self._idle) < IDLE_INSTANCES:
                self._idle.append((instance, -1))
                self._returned.notify_all()
                return
        instance.drop()

    def remember(self, key: bytes, instance: Instance) -> None:
        """``instance`` now keeps ``key``'s seed lease."""
        with self._lock:
            previous = self._holders.get(key)
            if previous is not None and previous is not instance:
                previous.held.discard(key)
            self._holders[key] = instance
            instance.held.add(key)

    def forget(self, key: bytes, instance: Instance) -> None:
        with self._lock:
            if self._holders.get(key) is instance:
                del self._holders[key]
            instance.held.discard(key)

    def _forget_all(self, instance: Instance) -> None:
        instance.retired = True
        for key in instance.held:
            if self._holders.get(key) is instance:
                del self._holders[key]
        instance.held.clear()

    def close_all(self, tid: Optional[str]) -> None:
        """After the lock's setup became "closed": closes every idle instance now (dropping the
        ones without seed leases: the component keeps its seed leases across a close, so
        ``release_lock`` still works after a reopen), and interrupts busy ones, which are closed
        when their call returns (a blocking wait ends with ``CANCELLED``)."""
        with self._lock:
            idle, self._idle = self._idle, []
            for instance in self._busy:
                instance.interrupt = True
                instance.stale = True
        kept: List[Tuple[Instance, int]] = []
        for instance, seen in idle:
            if instance.held and not instance.poisoned:
                try:
                    kept.append((instance, self._sync(instance, seen, tid)))
                    continue
                except Exception:
                    pass
            with self._lock:
                self._forget_all(instance)
            _discard(instance, tid)
        with self._lock:
            self._idle.extend(kept)
            self._returned.notify_all()


class _Loan:
    """One call's hold on an instance (a class, not a generator: it is on every call's path)."""

    __slots__ = ("pool", "tid", "key", "blocking", "instance", "seen")

    def __init__(self, pool: Pool, tid: Optional[str], key: Optional[bytes], blocking: bool):
        self.pool, self.tid, self.key, self.blocking = pool, tid, key, blocking

    def __enter__(self) -> Instance:
        instance, seen = self.pool._take(self.key, self.blocking)
        self.instance, self.seen = instance, seen
        try:
            self.seen = self.pool._sync(instance, seen, self.tid)
        except BaseException:
            self.pool._give_back(instance, seen, self.tid)
            raise
        return instance

    def __exit__(self, *_: object) -> None:
        self.pool._give_back(self.instance, self.seen, self.tid)


def _discard(instance: Instance, tid: Optional[str]) -> None:
    """Closes (the component cleans up what it left behind) and drops an instance."""
    if not instance.poisoned:
        try:
            instance.call("close", tid, tid)
        except Exception:
            pass
    instance.drop()
