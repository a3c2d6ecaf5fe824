"""``with lock.hold(key) as held:``: a lease renewed while the block runs, released on exit.

A daemon thread extends the lease every third of its ttl (compare-and-set, owner-checked). A
renewal that fails for a reason other than loss (memcached down or stalled) is retried until the
lease's validity ends. When the lease is lost (deleted, taken over, its server restarted) or its
validity ends unrenewed, ``held.lost`` says why, and leaving the block raises
``ConflictException`` ``LOCK_LOST`` unless the block is already raising: the work in the block
was not protected to its end, and the caller must know. Check ``held.lost`` (or
``held.remaining()``) before a step that must not run unprotected, and pass
``held.fencing_token`` to resources that can reject stale holders.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Optional

from . import errors
from .lease import Lease

if TYPE_CHECKING:
    from .lock import MemcachedLock


class Held:
    """The lease a ``hold`` block runs under, kept current by renewal."""

    def __init__(self, lease: Lease):
        self._lease = lease
        self._guard = threading.Lock()
        self.lost: Optional[BaseException] = None

    @property
    def lease(self) -> Lease:
        with self._guard:
            return self._lease

    @property
    def fencing_token(self) -> int:
        return self.lease.fencing_token

    @property
    def handle(self) -> str:
        return self.lease.handle()

    def remaining(self) -> float:
        return 0.0 if self.lost is not None else self.lease.remaining()


class _Renewal(threading.Thread):
    def __init__(self, lock: "MemcachedLock", held: Held, ttl: int, context: Any):
        super().__init__(name="memlock-renewal", daemon=True)
        self.lock, self.held, self.ttl, self.context = lock, held, ttl, context
        self.stop = threading.Event()

    def run(self) -> None:
        interval = self.ttl / 3000
        while not self.stop.wait(interval):
            lease = self.held.lease
            if lease.remaining() <= 0:
                self.held.lost = errors.ConflictException(
                    None, "LOCK_LOST", f"lease on {lease.key_text} expired before it was renewed"
                )
                return
            try:
                renewed = self.lock.extend(lease, self.ttl, context=self.context)
            except errors.ApplicationException as e:
                if e.code == "LOCK_LOST":
                    self.held.lost = e
                    return
                # Unavailable, stalled, or memlock's own failure: retry while validity lasts.
                interval = min(self.ttl / 3000, max(lease.remaining() / 4, 0.01))
                continue
            except Exception as e:  # never let the thread die silently: the block would run unguarded
                self.held.lost = errors.runtime_failure(None, e)
                return
            with self.held._guard:
                self.held._lease = renewed
            interval = self.ttl / 3000


class _Hold:
    def __init__(self, lock: "MemcachedLock", key: Any, ttl: int, timeout: int, context: Any):
        self.lock, self.key, self.ttl, self.timeout, self.context = lock, key, ttl, timeout, context
        self.held: Optional[Held] = None
        self.renewal: Optional[_Renewal] = None

    def __enter__(self) -> Held:
        lease = self.lock.acquire(self.key, self.ttl, self.timeout, context=self.context)
        self.held = Held(lease)
        self.renewal = _Renewal(self.lock, self.held, self.ttl, self.context)
        self.renewal.start()
        return self.held

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> bool:
        if self.held is None or self.renewal is None:
            return False
        self.renewal.stop.set()
        self.renewal.join()
        lost = self.held.lost
        if lost is None or getattr(lost, "code", None) != "LOCK_LOST":
            # Still ours, or validity ran out unrenewed: an owner-checked release is safe either
            # way (it deletes nothing that is someone else's).
            try:
                self.lock.release(self.held.lease, context=self.context)
            except Exception:
                if kind is None and lost is None:
                    raise
        if lost is not None and kind is None:
            raise lost
        return False


def hold(lock: "MemcachedLock", key: Any, ttl: int, timeout: int, context: Any) -> _Hold:
    return _Hold(lock, key, ttl, timeout, context)


__all__ = ["Held"]
