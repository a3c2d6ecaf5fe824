"""One MemcachedLock from several threads, close/reopen, configure while open, interruption, and
the error classes without pip-services: what a review found untested."""

from __future__ import annotations

import _thread
import base64
import dataclasses
import subprocess
import sys
import threading
import time

import pytest

import memlock
from memlock import MemcachedLock

from test_seed_api import opened, wait_until


def test_a_blocking_acquire_does_not_hold_up_a_release_in_another_thread(memcached):
    lock = opened(memcached)
    assert lock.try_acquire_lock(None, "a", 30_000)
    waiter_started = threading.Event()
    outcome = []

    def waiter() -> None:
        waiter_started.set()
        try:
            lock.acquire_lock(None, "a", 30_000, 20_000)
            outcome.append("acquired")
        except Exception as e:  # reported below
            outcome.append(e)

    thread = threading.Thread(target=waiter)
    thread.start()
    waiter_started.wait()
    started = time.monotonic()
    lock.release_lock(None, "a")  # must not wait for the 20 s acquire to give up
    thread.join(timeout=30)
    assert outcome == ["acquired"]
    # The waiter got the key once it was released: well within its 20 s timeout.
    assert time.monotonic() - started < 15
    lock.release_lock(None, "a")


def test_seed_methods_from_many_threads_exclude_each_other(memcached):
    lock = opened(memcached)
    inside, overlaps, failures = [], [], []

    def worker(n: int) -> None:
        try:
            for _ in range(10):
                lock.acquire_lock(None, "shared", 5000, 30_000)
                inside.append(n)
                if len(inside) > 1:
                    overlaps.append(list(inside))
                inside.remove(n)
                lock.release_lock(None, "shared")
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert failures == [] and overlaps == []


def test_release_lock_after_close_and_reopen_releases(memcached):
    lock, other = opened(memcached), opened(memcached)
    assert lock.try_acquire_lock(None, "kept", 30_000)
    lock.close(None)
    with pytest.raises(memlock.InvalidStateException) as raised:
        lock.release_lock(None, "kept")
    assert raised.value.code == "NOT_OPENED"
    lock.open(None)
    lock.release_lock(None, "kept")
    assert other.try_acquire_lock(None, "kept", 1000)


def test_configure_while_open_takes_effect_at_the_next_open(memcached, servers):
    lock = opened(memcached)
    assert lock.try_acquire_lock(None, "k0", 30_000)
    lock.configure(servers[0].config())
    # Still the first server until reopened: every call, from every thread, agrees.
    results = []
    threads = [
        threading.Thread(target=lambda n=n: results.append(lock.try_acquire_lock(None, f"k{n}", 30_000)))
        for n in range(1, 4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True, True, True]
    for n in range(4):
        key = base64.b64encode(f"k{n}".encode())
        assert memcached.raw(b"mg " + key + b" b\r\n").startswith(b"HD"), n
    lock.open(None)
    assert lock.try_acquire_lock(None, "k9", 30_000)
    assert b"HD" in servers[0].raw(b"mg azk= b\r\n")
    assert b"EN" in memcached.raw(b"mg azk= b\r\n")


def test_a_failing_discovery_is_cannot_resolve(memcached):
    class Broken:
        def resolve_all(self, context, key):
            raise RuntimeError("discovery service down")

    class References:
        def get_optional(self, locator):
            return [Broken()]

    lock = MemcachedLock()
    lock.configure({"connection.discovery_key": "cache"})
    lock.set_references(References())
    with pytest.raises(memlock.ConfigException) as raised:
        lock.open(None)
    assert raised.value.code == "CANNOT_RESOLVE"
    assert "discovery service down" in raised.value.message


def test_close_from_another_thread_stops_a_blocking_acquire(memcached):
    holder, lock = opened(memcached), opened(memcached)
    assert holder.try_acquire_lock(None, "busy", 30_000)
    outcome = []
    thread = threading.Thread(
        target=lambda: _record(outcome, lambda: lock.acquire_lock(None, "busy", 30_000, 60_000))
    )
    thread.start()
    wait_until(lambda: any(i for i in lock._pool._busy))
    started = time.monotonic()
    lock.close(None)
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert time.monotonic() - started < 10  # not the 60 s timeout
    assert isinstance(outcome[0], memlock.InvalidStateException) and outcome[0].code == "CANCELLED"


def test_a_signal_interrupts_a_blocking_acquire(memcached):
    holder, lock = opened(memcached), opened(memcached)
    assert holder.try_acquire_lock(None, "busy", 30_000)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        lock.acquire_lock(None, "busy", 30_000, 60_000)
    assert time.monotonic() - started < 10
    # Nothing was left held by the interrupted call, and the lock still works.
    holder.release_lock(None, "busy")
    assert lock.try_acquire_lock(None, "busy", 1000)


def test_values_out_of_range_are_bad_requests_not_truncated(memcached):
    lock = opened(memcached)
    # 2**64 + 1000 would reach the component as 1000 if it were passed on.
    with pytest.raises(memlock.BadRequestException) as raised:
        lock.try_acquire_lock(None, "k", 2**64 + 1000)
    assert raised.value.code == "INVALID_TTL" and "out of range" in raised.value.message
    lease = lock.try_acquire("k", 5000)
    forged = dataclasses.replace(lease, cas=lease.cas + 2**64)
    with pytest.raises(memlock.BadRequestException) as raised:
        lock.release(forged)
    assert raised.value.code == "INVALID_LEASE"
    assert lock.release(lease) is True  # the instance still works


def test_a_lease_deadline_is_never_later_than_the_truth(memcached):
    lock = opened(memcached)
    opened_at = time.monotonic()
    # Let time pass after the instance (and its WASI clock) was made, then acquire.
    wait_until(lambda: time.monotonic() - opened_at > 0.5)
    before = time.monotonic_ns()
    lease = lock.try_acquire("deadline", 2000)
    assert lease is not None
    assert lease.valid_until_ns <= before + 2000 * 1_000_000
    assert lease.valid_until_ns > before + 1500 * 1_000_000


def test_errors_without_pip_services_have_its_attributes(memcached):
    script = f"""
import sys
for name in list(sys.modules):
    pass
sys.modules['pip_services4_commons'] = None
sys.modules['pip_services4_commons.errors'] = None
import memlock
assert not memlock.PIP_SERVICES
lock = memlock.MemcachedLock()
lock.configure({{"connection.host": "127.0.0.1", "connection.port": {memcached.port}}})
lock.open("t")
other = memlock.MemcachedLock()
other.configure({{"connection.host": "127.0.0.1", "connection.port": {memcached.port}}})
other.open("t")
assert lock.try_acquire_lock("t", "k", 5000)
try:
    other.acquire_lock("trace-9", "k", 5000, 100)
except memlock.ConflictException as e:
    assert isinstance(e, memlock.ApplicationException)
    assert (e.category, e.code, e.trace_id, e.status) == ("Conflict", "LOCK_TIMEOUT", "trace-9", 409), e.to_json()
    assert e.message == "Acquiring lock k failed on timeout" and e.details == {{"key": "k"}}
    print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr


def _record(outcome, call):
    try:
        call()
        outcome.append("returned")
    except BaseException as e:
        outcome.append(e)
