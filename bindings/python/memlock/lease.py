"""Leases: a held lock, its fencing token, and the portable handle.

The handle is the CLI's format, byte for byte, so a lease taken in Python can be released by
``memlock release`` and the other way round::

    ml1.<key hex>.<owner token: 32 hex digits>.<cas>.<server process: pid:start:incarnation>.<fencing token>

A handle is what lets its bearer release or extend the lock: treat it like the lock.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Optional

from wasmtime.component import Record

from .errors import invalid_input

_HANDLE_PREFIX = "ml1"
_U64 = (1 << 64) - 1
_HEX = re.compile(r"\A[0-9a-fA-F]+\Z")
_DECIMAL = re.compile(r"\A[0-9]+\Z")


@dataclass(frozen=True)
class ServerProcess:
    """The memcached process a lease's item lives in; all zero when unknown (then release and
    extend find the item by its owner token)."""

    pid: int = 0
    started_at: int = 0
    incarnation: int = 0

    def __str__(self) -> str:
        return f"{self.pid}:{self.started_at}:{self.incarnation}"


@dataclass(frozen=True)
class Lease:
    """A held lock: everything needed to release or extend it, in this process or another."""

    key: bytes
    owner_token: int
    cas: int
    server_process: ServerProcess
    #: The ttl as requested, ms (0 for a lease read from a handle).
    ttl_ms: int
    #: ``time.monotonic_ns()`` after which the holder must assume the lock lost: time before the
    #: request was sent + ttl - drift allowance. ``None`` for a lease read from a handle.
    valid_until_ns: Optional[int]
    #: Every acquisition of a key gets a larger token than every earlier one:
    #: server start (unix seconds) * 2**64 + the acquisition's CAS.
    fencing_token: int

    @property
    def key_text(self) -> str:
        return self.key.decode("utf-8", "replace")

    def remaining(self) -> float:
        """Seconds of validity left (0.0 when unknown or past)."""
        if self.valid_until_ns is None:
            return 0.0
        return max(0, self.valid_until_ns - time.monotonic_ns()) / 1e9

    def handle(self) -> str:
        return (
            f"{_HANDLE_PREFIX}.{self.key.hex()}.{self.owner_token:032x}.{self.cas}."
            f"{self.server_process}.{self.fencing_token}"
        )

    def __str__(self) -> str:
        return self.handle()

    @staticmethod
    def from_handle(handle: str, trace_id: Optional[str] = None) -> "Lease":
        """Parses a handle (``memlock`` CLI, or :meth:`handle`); a malformed one is a
        ``BadRequestException`` with code ``INVALID_LEASE``."""

        def bad(why: str) -> Exception:
            return invalid_input(trace_id, "INVALID_LEASE", f"invalid lease handle: {why}")

        parts = handle.strip().split(".")
        if len(parts) != 6:
            raise bad("expected ml1.<key>.<token>.<cas>.<server process>.<fencing token>")
        prefix, key, token, cas, process, fence = parts
        if prefix != _HANDLE_PREFIX:
            raise bad("it does not start with ml1.")
        if not key or len(key) % 2 or not _HEX.match(key):
            raise bad("the key is not hex")
        if len(token) != 32 or not _HEX.match(token):
            raise bad("the owner token is not 32 hex digits")
        if not _DECIMAL.match(cas) or int(cas) > _U64:
            raise bad("the cas is not a number")
        numbers = process.split(":")
        if len(numbers) not in (2, 3) or not all(
            _DECIMAL.match(n) and int(n) <= _U64 for n in numbers
        ):
            raise bad("the server process is not pid:start:incarnation")
        # A handle from before incarnations (pid:start) reads as an unknown server process.
        server = ServerProcess(*map(int, numbers)) if len(numbers) == 3 else ServerProcess()
        if not _DECIMAL.match(fence) or int(fence) >= 1 << 128:
            raise bad("the fencing token is not a number")
        return Lease(
            key=bytes.fromhex(key),
            owner_token=int(token, 16),
            cas=int(cas),
            server_process=server,
            ttl_ms=0,
            valid_until_ns=None,
            fencing_token=int(fence),
        )


def from_wit(record: Any, clock_origin_ns: int) -> Lease:
    """A WIT ``lease`` record; ``clock_origin_ns`` maps the component's clock onto
    ``time.monotonic_ns()`` (see ``_instance``)."""
    token = getattr(record, "owner-token")
    process = getattr(record, "server-process")
    fence = getattr(record, "fencing-token")
    return Lease(
        key=bytes(record.key),
        owner_token=(token.high << 64) | token.low,
        cas=record.cas,
        server_process=ServerProcess(
            process.pid, getattr(process, "started-at"), process.incarnation
        ),
        ttl_ms=getattr(record, "ttl-ms"),
        valid_until_ns=clock_origin_ns + getattr(record, "valid-until-ns"),
        fencing_token=(getattr(fence, "server-start") << 64) | fence.sequence,
    )


def to_wit(lease: Lease, clock_origin_ns: int, trace_id: Optional[str] = None) -> Any:
    """The WIT ``lease`` record for ``lease`` (the component only reads its identity fields).
    Every number is range-checked here: wasmtime-py would silently truncate one that does not
    fit, and a lease with a wrong CAS is a lease of nobody."""
    process = lease.server_process
    for name, value, bits in [
        ("owner token", lease.owner_token, 128),
        ("cas", lease.cas, 64),
        ("server process pid", process.pid, 64),
        ("server process start", process.started_at, 64),
        ("server process incarnation", process.incarnation, 64),
        ("ttl", lease.ttl_ms, 64),
        ("fencing token", lease.fencing_token, 128),
    ]:
        if not isinstance(value, int) or not 0 <= value < 1 << bits:
            raise invalid_input(trace_id, "INVALID_LEASE", f"invalid lease: {name} {value!r} is out of range")
    if not isinstance(lease.key, (bytes, bytearray)):
        raise invalid_input(trace_id, "INVALID_LEASE", "invalid lease: the key is not bytes")

    def record(**fields: Any) -> Any:
        value = Record()
        for name, field in fields.items():
            setattr(value, name.replace("_", "-"), field)
        return value

    valid_until = lease.valid_until_ns or 0
    return record(
        key=lease.key,
        owner_token=record(high=lease.owner_token >> 64, low=lease.owner_token & _U64),
        cas=lease.cas,
        server_process=record(
            pid=lease.server_process.pid,
            started_at=lease.server_process.started_at,
            incarnation=lease.server_process.incarnation,
        ),
        ttl_ms=lease.ttl_ms,
        valid_until_ns=max(0, valid_until - clock_origin_ns) if valid_until else 0,
        fencing_token=record(server_start=lease.fencing_token >> 64, sequence=lease.fencing_token & _U64),
    )
