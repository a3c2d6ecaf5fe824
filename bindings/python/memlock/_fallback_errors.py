"""memlock's stand-ins for pip-services' exception classes, used when pip-services is not
installed: the same names, constructor arguments and attributes (``category``, ``code``,
``message``, ``trace_id``, ``status``, ``details``, ``cause``, ``stack_trace``) and the same
``with_*`` builders and ``to_json``."""

from __future__ import annotations

from typing import Any, Optional


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
UnauthorizedException = _subclass("UnauthorizedException", "Unauthorized", 401)
