"""Against the real pip-services packages: its ConfigParams, Context, References and discovery
are accepted, errors are its exception classes, and a fleet mixing the pip-services lock, memlock
in Python and the memlock CLI on one key excludes itself."""

from __future__ import annotations

import pytest
from pip_services4_commons.errors import ConfigException, ConflictException
from pip_services4_components.config import ConfigParams
from pip_services4_components.context import Context
from pip_services4_components.refer import Descriptor, References
from pip_services4_config.connect import MemoryDiscovery
from pip_services4_memcached.lock import MemcachedLock as PipServicesLock

import memlock
from memlock import MemcachedLock

from test_leases import memlock_cli


def test_errors_are_pip_services_exceptions(memcached):
    assert memlock.PIP_SERVICES
    with pytest.raises(ConfigException):
        MemcachedLock().configure(ConfigParams.from_tuples("options.timeout", "soon"))
    lock = MemcachedLock()
    lock.configure(ConfigParams.from_tuples("connection.host", "127.0.0.1", "connection.port", memcached.port))
    lock.open(Context.from_trace_id("123"))
    lock.acquire_lock(Context.from_trace_id("123"), "key1", 3000, 1000)
    with pytest.raises(ConflictException) as raised:
        other = MemcachedLock()
        other.configure(ConfigParams.from_tuples("connection.uri", f"memcached://{memcached.address}"))
        other.open(None)
        other.acquire_lock(Context.from_trace_id("456"), "key1", 3000, 200)
    assert raised.value.code == "LOCK_TIMEOUT" and raised.value.trace_id == "456"
    lock.release_lock(Context.from_trace_id("123"), "key1")


def test_discovery_key_resolves_through_references(memcached):
    discovery = MemoryDiscovery(
        ConfigParams.from_tuples("cache.host", "127.0.0.1", "cache.port", memcached.port)
    )
    references = References.from_tuples(
        Descriptor("pip-services", "discovery", "memory", "default", "1.0"), discovery
    )
    lock = MemcachedLock()
    lock.configure(ConfigParams.from_tuples("connection.discovery_key", "cache"))
    lock.set_references(references)
    lock.open(Context.from_trace_id("d"))
    assert lock.try_acquire_lock(None, "discovered", 1000)
    unresolved = MemcachedLock()
    unresolved.configure(ConfigParams.from_tuples("connection.discovery_key", "cache"))
    with pytest.raises(ConfigException) as raised:
        unresolved.open(None)
    assert raised.value.code == "CANNOT_RESOLVE"


def test_a_mixed_fleet_on_one_server_excludes_itself(memcached):
    config = ConfigParams.from_tuples("connection.host", "127.0.0.1", "connection.port", memcached.port)
    seed = PipServicesLock()
    seed.configure(config)
    seed.open(None)
    ours = MemcachedLock()
    ours.configure(config)
    ours.open(None)

    # The pip-services lock holds it: memlock in Python and the CLI are refused.
    assert seed.try_acquire_lock(None, "fleet", 5000)
    assert not ours.try_acquire_lock(None, "fleet", 5000)
    assert memlock_cli(memcached, "try-acquire", "fleet").returncode == 1
    seed.release_lock(None, "fleet")

    # memlock in Python holds it: the seed and the CLI are refused.
    assert ours.try_acquire_lock(None, "fleet", 5000)
    assert not seed.try_acquire_lock(None, "fleet", 5000)
    assert memlock_cli(memcached, "try-acquire", "fleet").returncode == 1
    ours.release_lock(None, "fleet")

    # The CLI holds it: both Python locks are refused.
    taken = memlock_cli(memcached, "try-acquire", "fleet", "--ttl", "5000")
    assert taken.returncode == 0, taken
    assert not seed.try_acquire_lock(None, "fleet", 5000)
    assert not ours.try_acquire_lock(None, "fleet", 5000)
    assert memlock_cli(memcached, "release", taken.stdout.strip()).returncode == 0
    assert ours.try_acquire_lock(None, "fleet", 5000)


def _fleet_config(servers, **extra):
    pairs = []
    for i, server in enumerate(servers, 1):
        pairs += [f"connections.{i}.host", "127.0.0.1", f"connections.{i}.port", server.port]
    for key, value in extra.items():
        pairs += [key, value]
    return ConfigParams.from_tuples(*pairs)


def test_rendezvous_sharding_puts_each_key_where_the_pip_services_lock_does(servers):
    keys = [f"job-{n}" for n in range(30)]
    seed = PipServicesLock()
    seed.configure(_fleet_config(servers))
    seed.open(None)
    for key in keys:
        assert seed.try_acquire_lock(None, key, 30_000), key

    # memlock with pymemcache's mapping finds every key held.
    ours = MemcachedLock()
    ours.configure(_fleet_config(servers, **{"options.sharding": "rendezvous"}))
    ours.open(None)
    assert [key for key in keys if ours.try_acquire_lock(None, key, 30_000)] == []

    # With the default jump hash, about two thirds of the keys land on another server: the two
    # fleets would not exclude each other. (This is what makes the check above able to fail.)
    jump = MemcachedLock()
    jump.configure(_fleet_config(servers))
    jump.open(None)
    taken = [key for key in keys if jump.try_acquire_lock(None, key, 30_000)]
    assert len(taken) > 5, taken
