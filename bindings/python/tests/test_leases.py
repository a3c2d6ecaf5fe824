"""Leases: fencing tokens, extend, handles shared with the CLI, and ``hold``."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

import memlock
from memlock import Lease, MemcachedLock

from test_seed_api import opened, wait_until

REPO = Path(__file__).resolve().parents[3]


def memlock_cli(server, *args: str) -> subprocess.CompletedProcess:
    binary = os.environ.get("MEMLOCK_BIN") or str(REPO / "target" / "debug" / "memlock")
    assert os.path.exists(binary), f"no memlock binary at {binary}: `cargo build -p memlock-host` (just test does)"
    return subprocess.run(
        [binary, "--server", server.address, *args], capture_output=True, text=True, timeout=60
    )


def test_fencing_tokens_grow_with_every_acquisition(memcached):
    lock = opened(memcached)
    tokens = []
    for _ in range(5):
        lease = lock.try_acquire("fenced", 5000)
        assert lease is not None
        tokens.append(lease.fencing_token)
        assert lock.release(lease)
    assert tokens == sorted(set(tokens))


def test_a_lease_knows_its_validity(memcached):
    lock = opened(memcached)
    lease = lock.try_acquire("valid", 2000)
    assert lease is not None
    # Never later than ttl after the call started (the drift allowance takes some off).
    assert 1.5 < lease.remaining() <= 2.0
    assert lease.ttl_ms == 2000 and lease.key == b"valid" and lease.key_text == "valid"


def test_extend_prolongs_and_a_lost_lease_is_lock_lost(memcached):
    lock, other = opened(memcached), opened(memcached)
    lease = lock.try_acquire("ext", 1000)
    extended = lock.extend(lease, 30_000)
    assert extended.cas != lease.cas and extended.fencing_token == lease.fencing_token
    assert extended.remaining() > 25
    assert b"t" in memcached.raw(b"mg ZXh0 b t\r\n")
    assert lock.release(extended)
    assert other.try_acquire("ext", 30_000) is not None
    with pytest.raises(memlock.ConflictException) as raised:
        lock.extend(extended, 30_000)
    assert raised.value.code == "LOCK_LOST"


def test_handles_are_the_clis(memcached):
    lock = opened(memcached)
    lease = lock.try_acquire("shared", 30_000)
    assert Lease.from_handle(lease.handle()).handle() == lease.handle()
    # Taken in Python, released by the CLI.
    released = memlock_cli(memcached, "release", lease.handle())
    assert released.returncode == 0, released
    # Taken by the CLI, extended and released in Python.
    taken = memlock_cli(memcached, "try-acquire", "shared", "--ttl", "30000")
    assert taken.returncode == 0, taken
    handle = taken.stdout.strip()
    assert lock.try_acquire("shared", 1000) is None
    extended = lock.extend(handle, 60_000)
    assert lock.release(extended) is True
    assert lock.release(handle) is False


@pytest.mark.parametrize(
    "handle",
    ["", "ml1.", "ml2.61.ab.1.1:2:3.5", "ml1.6.0123456789abcdef0123456789abcdef.1.1:2:3.5",
     "ml1.61.0123456789abcdef0123456789abcdeg.1.1:2:3.5", "ml1.61.0123456789abcdef0123456789abcdef.x.1:2:3.5",
     "ml1.é1.0123456789abcdef0123456789abcdef.1.1:2:3.5"],
)
def test_a_malformed_handle_is_invalid_lease(memcached, handle):
    lock = opened(memcached)
    with pytest.raises(memlock.BadRequestException) as raised:
        lock.release(handle)
    assert raised.value.code == "INVALID_LEASE"


def test_hold_renews_while_the_block_runs_and_releases_on_exit(memcached):
    lock, other = opened(memcached), opened(memcached)
    with lock.hold("held", ttl=600, timeout=1000) as held:
        first = held.lease
        # Renewed several times: the lease outlives its ttl many times over.
        cas_seen = {first.cas}
        wait_until(lambda: cas_seen.add(held.lease.cas) or len(cas_seen) >= 4, limit=10)
        assert held.lost is None
        assert other.try_acquire("held", 1000) is None
        assert held.fencing_token == first.fencing_token
    assert other.try_acquire("held", 1000) is not None


def test_hold_reports_a_lost_lease_when_the_block_ends(memcached):
    lock = opened(memcached)
    with pytest.raises(memlock.ConflictException) as raised:
        with lock.hold("victim", ttl=900, timeout=1000) as held:
            memcached.raw(b"md dmljdGlt b\r\n")  # someone deletes the item
            wait_until(lambda: held.lost is not None, limit=10)
    assert raised.value.code == "LOCK_LOST"


def test_many_threads_share_one_lock(memcached):
    lock = opened(memcached)
    inside = []
    overlaps = []
    errors = []

    def worker(n: int) -> None:
        try:
            for i in range(20):
                lease = lock.try_acquire(f"own-{n}-{i}", 5000)
                assert lease is not None and lock.release(lease)
                with lock.hold("contended", ttl=2000, timeout=20_000):
                    inside.append(n)
                    if len(inside) > 1:
                        overlaps.append(list(inside))
                    inside.remove(n)
        except BaseException as e:  # reported below, not lost in the thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == [] and overlaps == []
