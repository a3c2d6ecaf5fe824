"""TLS connections for the component, with Python's ``ssl``: the ``tls-bridge`` import.

The composed component does its plaintext I/O inside wasm (WASI sockets), but WASI 0.2 has no
TLS, so a connection that asks for TLS (``connection.protocol=memcacheds``) is opened and carried
here: one ``ssl.SSLSocket`` per stream, numbered for the component. Each round trip is then a
call into Python, slower than the plaintext path (see BENCHMARKS.md), but the certificates are
checked by the platform's TLS: the CA file (or the system's roots), the server name, and a client
certificate when configured. ``credential.ssl_insecure=true`` is the only way to skip the checks,
and every such connection is logged as insecure.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from typing import Any, Dict, Optional

from wasmtime.component import Variant

_log = logging.getLogger("memlock")


def _error(tag: str, message: Optional[str] = None) -> Variant:
    """A WIT ``socket-error`` case (``tls`` carries why)."""
    return Variant(tag, message) if message is not None else Variant(tag)


def _context(settings: Any) -> ssl.SSLContext:
    """The client context for a WIT ``tls-settings`` record; raises ``ValueError`` with a message
    for people when a file cannot be used."""
    ca_file = getattr(settings, "ca-file")
    cert_file, key_file = getattr(settings, "cert-file"), getattr(settings, "key-file")
    if settings.verify:
        try:
            context = ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as e:
            raise ValueError(f"cannot read the certificates in {ca_file}: {e}") from None
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert_file and key_file:
        try:
            context.load_cert_chain(cert_file, key_file)
        except (OSError, ssl.SSLError) as e:
            raise ValueError(
                f"cannot use the client certificate {cert_file} with key {key_file}: {e}"
            ) from None
    return context


class TlsBridge:
    """The TLS streams of one component instance."""

    def __init__(self) -> None:
        self._streams: Dict[int, ssl.SSLSocket] = {}
        self._next = 1
        self._lock = threading.Lock()

    def open(self, _store: Any, host: str, port: int, timeout_ms: int, settings: Any) -> Any:
        server_name = getattr(settings, "server-name")
        try:
            context = _context(settings)
        except ValueError as e:
            return _error("tls", str(e))
        if not settings.verify:
            _log.warning(
                "TLS certificate verification is OFF for %s:%s (credential.ssl_insecure=true): "
                "anyone on the path can impersonate this memcached",
                host,
                port,
            )
        deadline = time.monotonic() + max(timeout_ms, 1) / 1000
        try:
            raw = socket.create_connection((host, port), timeout=max(timeout_ms, 1) / 1000)
        except socket.timeout:
            return _error("timed-out")
        except (ConnectionError, socket.gaierror, OSError):
            return _error("refused")
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            raw.settimeout(max(deadline - time.monotonic(), 0.001))
            stream = context.wrap_socket(raw, server_hostname=server_name)
        except socket.timeout:
            raw.close()
            return _error("timed-out")
        except ssl.SSLCertVerificationError as e:
            raw.close()
            trust = f" with the CA in {getattr(settings, 'ca-file')}" if getattr(settings, "ca-file") else (
                " with the system's roots (set credential.ssl_ca_file)"
            )
            return _error(
                "tls",
                f"the server's certificate is not trusted ({e.verify_message}) for "
                f'"{server_name}"{trust}',
            )
        except ssl.SSLError as e:
            raw.close()
            hint = " (does the server speak TLS? memcached needs -Z)" if "WRONG_VERSION" in str(e) else ""
            return _error("tls", f"{e}{hint}")
        except ValueError as e:  # a server name ssl cannot use
            raw.close()
            return _error("tls", str(e))
        except (ConnectionError, OSError) as e:
            raw.close()
            return _error(
                "tls",
                "the server closed the connection during the handshake (does it speak TLS, or "
                f"does it require a client certificate?): {e}",
            )
        with self._lock:
            number = self._next
            self._next += 1
            self._streams[number] = stream
        return number

    def exchange(
        self, _store: Any, number: int, request: bytes, max_bytes: int, timeout_ms: int
    ) -> Any:
        stream = self._streams.get(number)
        if stream is None:
            return _error("other")
        deadline = time.monotonic() + max(timeout_ms, 1) / 1000
        try:
            if request:
                stream.settimeout(max(timeout_ms, 1) / 1000)
                stream.sendall(bytes(request))
            stream.settimeout(max(deadline - time.monotonic(), 0.001))
            data = stream.recv(max(max_bytes, 1))
        except socket.timeout:
            return _error("timed-out")
        except ssl.SSLError as e:
            # With TLS 1.3 a server that refuses the client's certificate says so in an alert
            # the first read receives, after the handshake.
            return _error(
                "tls",
                f"the server refused the connection: {e} (a server that verifies clients needs "
                "credential.ssl_crt_file and credential.ssl_key_file, with a certificate its CA signed)",
            )
        except (ConnectionError, OSError):
            return _error("closed")
        if not data:
            return _error("closed")
        return data

    def send(self, _store: Any, number: int, request: bytes, timeout_ms: int) -> Any:
        stream = self._streams.get(number)
        if stream is None:
            return _error("other")
        try:
            stream.settimeout(max(timeout_ms, 1) / 1000)
            stream.sendall(bytes(request))
        except socket.timeout:
            return _error("timed-out")
        except ssl.SSLError as e:
            return _error("tls", f"the TLS session failed: {e}")
        except (ConnectionError, OSError):
            return _error("closed")
        return None

    def receive(self, store: Any, number: int, max_bytes: int, timeout_ms: int) -> Any:
        return self.exchange(store, number, b"", max_bytes, timeout_ms)

    def close(self, _store: Any, number: int) -> None:
        with self._lock:
            stream = self._streams.pop(number, None)
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass

    def close_all(self) -> None:
        with self._lock:
            streams, self._streams = list(self._streams.values()), {}
        for stream in streams:
            try:
                stream.close()
            except OSError:
                pass
