"""Real memcached processes on free loopback ports, started and stopped by the tests.

A test that needs memcached and cannot start it fails with the command that installs it; it
never skips.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from typing import Iterator, List

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Memcached:
    """One memcached process; ``restart()`` keeps the port, ``pause()``/``resume()`` stall it."""

    def __init__(self, *args: str) -> None:
        binary = shutil.which("memcached") or "/usr/bin/memcached"
        if not os.path.exists(binary):
            pytest.fail("memcached is not installed: run `just setup` (or `apt-get install memcached`)")
        self.binary = binary
        self.args = list(args)
        self.port = _free_port()
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        command = [self.binary, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-t", "1"]
        if os.geteuid() == 0:
            command += ["-u", "root"]
        self.process = subprocess.Popen(command + self.args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"memcached exited: {self.process.stderr.read().decode() if self.process.stderr else ''}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.005)
        pytest.fail(f"memcached did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait()
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def config(self) -> dict:
        return {"connection.host": "127.0.0.1", "connection.port": str(self.port)}

    def raw(self, command: bytes) -> bytes:
        """Sends one command, returns the reply up to its terminator."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(command)
            reply = b""
            while not any(reply.endswith(end) for end in (b"END\r\n", b"HD\r\n", b"EN\r\n", b"NF\r\n", b"\r\n")):
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
            return reply


@pytest.fixture
def memcached() -> Iterator[Memcached]:
    server = Memcached()
    yield server
    server.stop()


@pytest.fixture
def servers() -> Iterator[List[Memcached]]:
    started = [Memcached() for _ in range(3)]
    yield started
    for server in started:
        server.stop()
