"""Errors as pip-services raises them.

With pip-services installed (``pip_services4_commons``), every error is one of its exception
classes, with ``category``, ``code``, ``message`` and ``trace_id`` set the way pip-services sets
them, so ``except ConflictException`` and ``e.code == "LOCK_TIMEOUT"`` keep working after the
switch. Without it, memlock's own classes with the same names and attributes stand in
(``_fallback_errors``).

The classes are looked up on first use, not at import: importing pip-services' errors takes
tens of milliseconds, which a one-shot script that never fails should not pay.

The component reports every failure as a WIT ``lock-error``: a category (``no-response``) and a
code (``lock-timeout``); the pip-services spellings are ``NoResponse`` and ``LOCK_TIMEOUT``.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, Optional

NAMES = (
    "ApplicationException",
    "BadRequestException",
    "ConfigException",
    "ConflictException",
    "ConnectionException",
    "InternalException",
    "InvalidStateException",
    "InvocationException",
    "UnauthorizedException",
    "UnknownException",
    "UnsupportedException",
)

#: WIT ``error-category`` case -> the name of the exception class of that category.
_BY_CATEGORY = {
    "unknown": "UnknownException",
    "internal": "InternalException",
    "misconfiguration": "ConfigException",
    "no-response": "ConnectionException",
    "failed-invocation": "InvocationException",
    "bad-request": "BadRequestException",
    "invalid-state": "InvalidStateException",
    "conflict": "ConflictException",
    "unsupported": "UnsupportedException",
    "unauthorized": "UnauthorizedException",
}

_loaded: Optional[Dict[str, Any]] = None
_load_lock = threading.Lock()


def classes() -> Dict[str, Any]:
    """The exception classes (pip-services' when installed), and ``PIP_SERVICES``."""
    global _loaded
    if _loaded is None:
        with _load_lock:
            if _loaded is None:
                try:
                    from pip_services4_commons import errors as source

                    found = True
                except ImportError:
                    from . import _fallback_errors as source  # type: ignore[no-redef]

                    found = False
                table: Dict[str, Any] = {name: getattr(source, name) for name in NAMES}
                table["PIP_SERVICES"] = found
                _loaded = table
    return _loaded


def __getattr__(name: str) -> Any:
    if name in NAMES or name == "PIP_SERVICES":
        return classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def code_name(wit_code: str) -> str:
    """``lock-timeout`` -> ``LOCK_TIMEOUT``: the pip-services spelling of a WIT ``error-code``."""
    return wit_code.upper().replace("-", "_")


def from_lock_error(record: Any) -> Any:
    """The exception for a WIT ``lock-error`` record."""
    cls = classes()[_BY_CATEGORY.get(record.category, "UnknownException")]
    return cls(getattr(record, "correlation-id"), code_name(record.code), record.message)


def invalid_input(trace_id: Optional[str], code: str, message: str) -> Any:
    """A caller's bad argument, found before the component is reached (e.g. a malformed handle)."""
    return classes()["BadRequestException"](trace_id, code, message)


def runtime_failure(trace_id: Optional[str], cause: BaseException) -> Any:
    """A failure of the wasm runtime itself (a trap): memlock's bug, never the caller's."""
    error = classes()["InternalException"](trace_id, "RUNTIME", f"the memlock component failed: {cause}")
    error.cause = str(cause)
    return error
