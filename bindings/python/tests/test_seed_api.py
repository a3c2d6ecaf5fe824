"""The seed's API and semantics, as pip-services' own lock fixture exercises them, plus what the
seed got wrong: sub-second ttls, owner-checked and restart-safe release, injection-proof keys."""

from __future__ import annotations

import time

import pytest

import memlock
from memlock import MemcachedLock


def opened(server, **options) -> MemcachedLock:
    lock = MemcachedLock()
    config = server.config()
    config.update({f"options.{k}": str(v) for k, v in options.items()})
    lock.configure(config)
    lock.open(None)
    return lock


def wait_until(condition, limit: float = 10.0):
    """Polls `condition` until it holds; fails after `limit` seconds instead of hanging."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.01)


def test_the_pip_services_lock_fixture(memcached):
    lock, other = opened(memcached), opened(memcached)
    assert lock.is_open()
    # try_acquire_lock: one holder at a time
    assert lock.try_acquire_lock("123", "key1", 3000) is True
    assert other.try_acquire_lock("123", "key1", 3000) is False
    lock.release_lock("123", "key1")
    assert other.try_acquire_lock("123", "key1", 3000) is True
    other.release_lock("123", "key1")
    # acquire_lock: waits, then LOCK_TIMEOUT with the seed's message
    lock.acquire_lock(None, "key2", 3000, 1000)
    with pytest.raises(memlock.ConflictException) as raised:
        other.acquire_lock("trace-7", "key2", 3000, 300)
    assert raised.value.code == "LOCK_TIMEOUT"
    assert raised.value.category == "Conflict"
    assert raised.value.message == "Acquiring lock key2 failed on timeout"
    assert raised.value.trace_id == "trace-7"
    lock.release_lock(None, "key2")
    other.acquire_lock(None, "key2", 3000, 1000)
    other.release_lock(None, "key2")
    # releasing a key not held is a no-op, as in pip-services
    lock.release_lock(None, "never-taken")
    lock.close(None)
    assert not lock.is_open()
    other.close(None)


def test_not_opened_and_no_connection_are_pip_services_errors(memcached):
    lock = MemcachedLock()
    lock.configure(memcached.config())
    with pytest.raises(memlock.InvalidStateException) as raised:
        lock.try_acquire_lock(None, "k", 1000)
    assert raised.value.code == "NOT_OPENED"
    empty = MemcachedLock()
    empty.configure({})
    with pytest.raises(memlock.ConfigException) as raised:
        empty.open("t")
    assert raised.value.code == "NO_CONNECTION"
    assert not empty.is_open()


@pytest.mark.parametrize(
    "key,value",
    [
        ("connection.port", "99999"),
        ("connection.uri", "http://x"),
        ("options.timeout", "soon"),
        ("options.max_size", "many"),
        ("options.remove", "true"),
        ("options.unknown", "1"),
    ],
)
def test_bad_config_is_a_config_exception_naming_the_key(key, value):
    with pytest.raises(memlock.ConfigException) as raised:
        MemcachedLock().configure({key: value})
    assert raised.value.code == "INVALID_CONFIG"
    assert key in raised.value.message


def test_every_key_the_seed_documents_is_accepted(memcached):
    config = memcached.config()
    config.update(
        {
            "options.retry_timeout": 100,
            "options.max_size": 1000,
            "options.max_key_size": 250,
            "options.max_expiration": 2592000,
            "options.max_value": 1048576,
            "options.pool_size": 5,
            "options.reconnect": 10000,
            "options.retries": 3,
            "options.timeout": 60000,
            "options.failures": 5,
            "options.retry": 30000,
            "options.idle": 5000,
        }
    )
    lock = MemcachedLock()
    lock.configure(config)
    lock.open(None)
    assert lock.try_acquire_lock(None, "k", 1000)


def test_a_sub_second_ttl_expires(memcached):
    lock, other = opened(memcached), opened(memcached)
    assert lock.try_acquire_lock(None, "short", 500)
    assert not other.try_acquire_lock(None, "short", 500)
    wait_until(lambda: other.try_acquire_lock(None, "short", 500), limit=5)


def test_release_is_owner_checked(memcached):
    lock, other = opened(memcached), opened(memcached)
    lease = lock.try_acquire("job", 600)
    assert lease is not None
    wait_until(lambda: other.try_acquire("job", 30_000) is not None, limit=5)
    # The first holder's lease expired and the key is someone else's now: untouched.
    assert lock.release(lease) is False
    assert other.try_acquire("job", 1000) is None
    assert b"VA" in memcached.raw(b"mg am9i b v\r\n")


def test_release_after_a_server_restart_deletes_nothing(memcached):
    lock = opened(memcached)
    lease = lock.try_acquire("job", 30_000)
    assert lease is not None
    memcached.restart()
    other = opened(memcached)
    wait_until(lambda: other.try_acquire("job", 30_000) is not None)
    assert lock.release(lease) is False
    assert other.try_acquire("job", 1000) is None


def test_keys_cannot_inject_commands(memcached):
    lock = opened(memcached)
    memcached.raw(b"set victim 0 0 1\r\nx\r\n")
    for key in ["a b", "x\r\nflush_all", "x\r\ndelete victim", "\x00", "ключ"]:
        assert lock.try_acquire_lock(None, key, 5000), key
        lock.release_lock(None, key)
    assert b"VALUE victim" in memcached.raw(b"get victim\r\n")
    with pytest.raises(memlock.BadRequestException) as raised:
        lock.try_acquire_lock(None, "", 1000)
    assert raised.value.code == "INVALID_KEY"
    with pytest.raises(memlock.BadRequestException) as raised:
        lock.try_acquire_lock(None, "k" * 300, 1000)
    assert raised.value.code == "INVALID_KEY"
    with pytest.raises(memlock.BadRequestException) as raised:
        lock.try_acquire_lock(None, "k", 0)
    assert raised.value.code == "INVALID_TTL"


def test_a_stalled_server_times_out_within_the_configured_timeout(memcached):
    lock = opened(memcached, timeout=300)
    assert lock.try_acquire_lock(None, "warm", 1000)  # a pooled connection exists
    memcached.pause()
    try:
        started = time.monotonic()
        with pytest.raises(memlock.ConnectionException) as raised:
            lock.try_acquire_lock(None, "stalled", 1000)
        # Bounded, not fast: 300 ms plus a margin for a loaded machine.
        assert time.monotonic() - started < 2.3
        assert raised.value.code == "TIMEOUT"
    finally:
        memcached.resume()


def test_a_server_that_is_down_is_connect_failed(memcached):
    lock = opened(memcached, reconnect=300)
    memcached.stop()
    started = time.monotonic()
    with pytest.raises(memlock.ConnectionException) as raised:
        lock.try_acquire_lock(None, "down", 1000)
    assert raised.value.code == "CONNECT_FAILED"
    assert time.monotonic() - started < 2.3  # options.reconnect bounds every connect attempt
