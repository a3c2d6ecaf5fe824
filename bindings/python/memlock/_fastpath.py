"""Calls into the component without wasmtime-py re-reading every type on every call.

wasmtime-py 47.0.1 converts values by walking their WIT types, and rebuilds those type objects
from the C API at every call: a function's type on every call, a record's fields and a variant's
cases on every value. For a lease (a record of records) that is hundreds of C calls and
thousands of Python ones per lock operation, more than the network round trip. Types never
change, so this module reads each function's type once ([`Export`]) and memoises the type
objects' derived lists on the objects themselves. Values still go through wasmtime-py's own
conversions; nothing here knows the C value layout.

The memoised methods are wasmtime-py's, patched on its classes once per process, and only on the
version the package pins (47.0.1), whose internals this was written against; with any other
version calls go through wasmtime-py's own ``Func.__call__``, slower but correct. Memoising
changes no result: a type object describes a WIT type, which never changes.
"""

from __future__ import annotations

import ctypes
import threading
from ctypes import byref, pointer
import os
from typing import Any, Callable

import wasmtime

from wasmtime import _ffi as ffi
from wasmtime.component import _types
from wasmtime.component._enter import enter_wasm

class ArgumentError(ValueError):
    """A Python value that does not fit the WIT type of a parameter (nothing reached wasm)."""


_patched = False
_patch_lock = threading.Lock()


#: The wasmtime-py whose internals the fast path relies on.
SUPPORTED = "47.0.1"


def installed_version() -> str:
    """wasmtime-py's version, from its dist-info directory (``importlib.metadata`` would add
    ~25 ms to every process start), else from the metadata."""
    site = os.path.dirname(os.path.dirname(os.path.abspath(wasmtime.__file__)))
    try:
        for entry in os.listdir(site):
            if entry.startswith("wasmtime-") and entry.endswith(".dist-info"):
                return entry[len("wasmtime-") : -len(".dist-info")]
    except OSError:
        pass
    from importlib import metadata

    try:
        return metadata.version("wasmtime")
    except metadata.PackageNotFoundError:
        return "unknown"


_supported = None


def supported() -> bool:
    global _supported
    if _supported is None:
        _supported = installed_version() == SUPPORTED
    return _supported


def _cached(compute: Callable[[Any], Any], name: str) -> Callable[[Any], Any]:
    """``compute(self)``, computed once per object and kept in the object's ``__dict__``."""
    slot = f"_memlock_{name}"

    def cached(self: Any) -> Any:
        try:
            return self.__dict__[slot]
        except KeyError:
            value = self.__dict__[slot] = compute(self)
            return value

    return cached


def _memoise_property(cls: type, name: str) -> None:
    original = cls.__dict__.get(name)
    if not isinstance(original, property) or original.fget is None:
        raise RuntimeError(f"wasmtime-py's {cls.__name__}.{name} is no longer a property")
    setattr(cls, name, property(_cached(original.fget, name), doc=original.__doc__))


def _memoise_method(cls: type, name: str) -> None:
    compute = cls.__dict__.get(name)
    if not callable(compute):
        raise RuntimeError(f"wasmtime-py's {cls.__name__}.{name} is no longer a method")
    setattr(cls, name, _cached(compute, name))


def patch() -> None:
    """Memoises the derived type lists (idempotent; only on the supported wasmtime-py)."""
    global _patched
    with _patch_lock:
        if _patched or not supported():
            return
        _memoise_property(_types.RecordType, "fields")
        _memoise_property(_types.TupleType, "elements")
        _memoise_property(_types.ListType, "element")
        _memoise_property(_types.EnumType, "names")
        for cls in (_types.VariantType, _types.OptionType, _types.ResultType):
            _memoise_method(cls, "_cases")
        _memoise_method(_types.VariantLikeType, "_tagged")
        _patched = True


class Export:
    """One exported function with its type read once."""

    def __init__(self, func: Any, store: Any):
        self._plain = None if supported() else func
        self._func = func._func
        fty = func.type(store)
        self._params = [ty for _name, ty in fty.params]
        self._result = fty.result
        self._fty = fty  # keeps the type objects (and their C pointers) alive

    def __call__(self, store: Any, *params: Any) -> Any:
        if self._plain is not None:
            try:
                return self._plain(store, *params)
            except (TypeError, ValueError, OverflowError, AttributeError) as e:
                raise ArgumentError(str(e)) from e
        if len(params) != len(self._params):
            raise TypeError(f"expected {len(self._params)} parameters, got {len(params)}")
        param_capi = (ffi.wasmtime_component_val_t * len(params))()
        n = 0
        try:
            for ty, value in zip(self._params, params):
                try:
                    ty.convert_to_c(store, value, pointer(param_capi[n]))
                except (TypeError, ValueError, OverflowError, AttributeError) as e:
                    raise ArgumentError(f"argument {n + 1}: {e}") from e
                n += 1
            result_space = ffi.wasmtime_component_val_t() if self._result is not None else None
            result_capi = byref(result_space) if result_space is not None else None
            result_len = 1 if result_space is not None else 0

            def run() -> "ctypes._Pointer[ffi.wasmtime_error_t]":
                return ffi.wasmtime_component_func_call(
                    byref(self._func), store._context(), param_capi, n, result_capi, result_len
                )

            enter_wasm(run)
            if result_space is None:
                return None
            return self._result.convert_from_c(result_space)
        finally:
            for i in range(n):
                ffi.wasmtime_component_val_delete(byref(param_capi[i]))
