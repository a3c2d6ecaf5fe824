"""Python rows of `just bench`, run by memlock-bench against its memcached.

    bench.py cycles HOST:PORT N     interleaved try+release cycles, JSON medians and p99s
    bench.py oneshot WHICH HOST:PORT   one whole process: import, configure, open, try, release, close

`cycles` measures the pip-services lock, memlock's seed methods and memlock's lease methods in
rotating rounds of 100 cycles, so the machine's drift hits all three alike.
"""

from __future__ import annotations

import json
import sys
import time


def configured(which: str, host: str, port: str):
    if which == "pip-services":
        from pip_services4_components.config import ConfigParams
        from pip_services4_memcached.lock import MemcachedLock

        lock = MemcachedLock()
        lock.configure(ConfigParams.from_tuples("connection.host", host, "connection.port", port))
    else:
        from memlock import MemcachedLock

        lock = MemcachedLock()
        lock.configure({"connection.host": host, "connection.port": port})
    lock.open(None)
    return lock


def oneshot(which: str, address: str) -> None:
    host, port = address.rsplit(":", 1)
    lock = configured(which, host, port)
    assert lock.try_acquire_lock(None, f"oneshot-{which}", 10_000)
    lock.release_lock(None, f"oneshot-{which}")
    lock.close(None)


def cycles(address: str, n: int) -> None:
    host, port = address.rsplit(":", 1)
    seed, ours = configured("pip-services", host, port), configured("memlock", host, port)

    def pip_services() -> None:
        assert seed.try_acquire_lock(None, "py-seed", 10_000)
        seed.release_lock(None, "py-seed")

    def memlock_seed() -> None:
        assert ours.try_acquire_lock(None, "py-memlock", 10_000)
        ours.release_lock(None, "py-memlock")

    def memlock_lease() -> None:
        lease = ours.try_acquire("py-lease", 10_000)
        assert lease is not None and ours.release(lease)

    # Where memlock's time goes: a Python socket round trip (the floor Python code can reach),
    # one export call that does no I/O, and the two seed calls without the Python wrapper.
    import socket

    floor_socket = socket.create_connection((host, int(port)))
    floor_socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def python_floor() -> None:
        floor_socket.sendall(b"mn\r\n")
        reply = b""
        while not reply.endswith(b"MN\r\n"):
            reply += floor_socket.recv(64)

    with ours._pool.lend(None) as instance:
        pass

    def export_call() -> None:
        instance.call("is-open", None)

    def raw_seed() -> None:
        assert instance.call("try-acquire-lock", None, None, b"py-raw", 10_000)
        instance.call("release-lock", None, None, b"py-raw")

    paths = {
        "pip-services": pip_services,
        "memlock seed": memlock_seed,
        "memlock lease": memlock_lease,
        "python floor": python_floor,
        "export call": export_call,
        "raw seed": raw_seed,
    }
    samples = {name: [] for name in paths}
    for path in paths.values():  # warm up: connections, the compiled code, the caches
        for _ in range(50):
            path()
    rounds = max(1, n // 100)
    for r in range(rounds):
        order = list(paths.items())
        order = order[r % len(order) :] + order[: r % len(order)]
        for name, path in order:
            for _ in range(100):
                started = time.perf_counter_ns()
                path()
                samples[name].append(time.perf_counter_ns() - started)

    def summary(values):
        values = sorted(values)
        return {"median_us": values[len(values) // 2] / 1e3, "p99_us": values[int(len(values) * 0.99)] / 1e3}

    print(json.dumps({name: summary(values) for name, values in samples.items()}))


if __name__ == "__main__":
    if sys.argv[1] == "cycles":
        cycles(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "oneshot":
        oneshot(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
