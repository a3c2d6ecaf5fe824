"""Errors as pip-services raises them.

With pip-services installed (``pip_services4_commons``), every error is one of its exception
classes, with ``category``, ``code``, ``message`` and ``trace_id`` set the way pip-services sets
them, so ``except ConflictException`` and ``e.code == "LOCK_TIMEOUT"`` keep working after the
switch. Without it, memlock's own classes with the same names and attributes stand in.

The component reports every failure as a WIT ``lock-error``: a category (``no-response``) and a
code (``lock-timeout``); the pip-services spellings are ``NoResponse`` and ``LOCK_TIMEOUT``.
"""

from __future__ import annotations

from typing import Any, Optional

try:  # pragma: no branch - which side runs depends on the environment
    from pip_services4_commons.errors import (
        ApplicationException,
        BadRequestException,
        ConfigException,
        ConflictException,
        ConnectionException,
        InternalException,
        InvalidStateException,
        InvocationException,
        UnknownException,
        UnsupportedException,
    )

    PIP_SERVICES = True
except ImportError:
    PIP_SERVICES = False

    class ApplicationException(Exception):  # type: ignore[no-redef]
        """The attributes of pip-services' ``ApplicationException``."""

        def __init__(
            self,
            category: str = "Unknown",
            trace_id: Optional[str] = None,
            code: str = "UNKNOWN",
            message: str = "Unknown error",
        ):
            super().__init__(message)
            self.message = message
            self.category = category or "Unknown"
            self.status = 500
            self.code = code or "UNKNOWN"
            self.details: Optional[dict] = None
            self.trace_id = trace_id
            self.stack_trace: Optional[str] = None
            self.cause: Optional[str] = None
            self.name = code

        def with_details(self, key: str, value: Any) -> "ApplicationException":
            self.details = self.details or {}
            self.details[key] = value
            return self

        def with_cause(self, cause: Any) -> "ApplicationException":
            self.cause = str(cause) if cause is not None else None
            return self

        def with_code(self, code: str) -> "ApplicationException":
            self.code = code or "UNKNOWN"
            self.name = self.code
            return self

        def with_trace_id(self, trace_id: Optional[str]) -> "ApplicationException":
            self.trace_id = trace_id
            return self

        def with_status(self, status: int) -> "ApplicationException":
            self.status = status or 500
            return self

        def with_stack_trace(self, stack_trace: str) -> "ApplicationException":
            self.stack_trace = stack_trace
            return self

        def to_json(self) -> dict:
            return {
                "category": self.category,
                "code": self.code,
                "status": self.status,
                "details": self.details,
                "message": self.message,
                "cause": self.cause,
                "stack_trace": self.stack_trace,
                "trace_id": self.trace_id,
            }

        def __str__(self) -> str:
            return str(self.message) if self.message is not None else "Unknown error"

    def _subclass(name: str, category: str, status: int) -> type:
        def __init__(self, trace_id=None, code=None, message=None):  # type: ignore[no-untyped-def]
            ApplicationException.__init__(self, category, trace_id, code, message)
            self.status = status

        return type(name, (ApplicationException,), {"__init__": __init__})

    UnknownException = _subclass("UnknownException", "Unknown", 500)
    InternalException = _subclass("InternalException", "Internal", 500)
    ConfigException = _subclass("ConfigException", "Misconfiguration", 500)
    ConnectionException = _subclass("ConnectionException", "NoResponse", 500)
    InvocationException = _subclass("InvocationException", "FailedInvocation", 500)
    BadRequestException = _subclass("BadRequestException", "BadRequest", 400)
    InvalidStateException = _subclass("InvalidStateException", "InvalidState", 500)
    ConflictException = _subclass("ConflictException", "Conflict", 409)
    UnsupportedException = _subclass("UnsupportedException", "Unsupported", 500)


#: WIT ``error-category`` case -> the pip-services exception class of that category.
_BY_CATEGORY = {
    "unknown": UnknownException,
    "internal": InternalException,
    "misconfiguration": ConfigException,
    "no-response": ConnectionException,
    "failed-invocation": InvocationException,
    "bad-request": BadRequestException,
    "invalid-state": InvalidStateException,
    "conflict": ConflictException,
    "unsupported": UnsupportedException,
}


def code_name(wit_code: str) -> str:
    """``lock-timeout`` -> ``LOCK_TIMEOUT``: the pip-services spelling of a WIT ``error-code``."""
    return wit_code.upper().replace("-", "_")


def from_lock_error(record: Any) -> ApplicationException:
    """The exception for a WIT ``lock-error`` record."""
    cls = _BY_CATEGORY.get(record.category, UnknownException)
    code = code_name(record.code)
    error = cls(getattr(record, "correlation-id"), code, record.message)
    return error


def invalid_input(trace_id: Optional[str], code: str, message: str) -> ApplicationException:
    """A caller's bad argument, found before the component is reached (e.g. a malformed handle)."""
    return BadRequestException(trace_id, code, message)


def runtime_failure(trace_id: Optional[str], cause: BaseException) -> ApplicationException:
    """A failure of the wasm runtime itself (a trap): memlock's bug, never the caller's."""
    error = InternalException(trace_id, "RUNTIME", f"the memlock component failed: {cause}")
    error.cause = str(cause)
    return error


__all__ = [
    "PIP_SERVICES",
    "ApplicationException",
    "BadRequestException",
    "ConfigException",
    "ConflictException",
    "ConnectionException",
    "InternalException",
    "InvalidStateException",
    "InvocationException",
    "UnknownException",
    "UnsupportedException",
]
