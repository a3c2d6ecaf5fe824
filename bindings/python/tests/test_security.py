"""TLS and authentication through the Python binding, against memcached started with ``-Z``
(certificates made for the run by the repository's ``memlock-test-pki``) and ``-Y``."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Dict, Iterator

import pytest

from memlock import MemcachedLock
from memlock import errors

from conftest import Memcached

REPO = Path(__file__).resolve().parents[3]
USER, PASSWORD = "alice", "s3cret-Pa55word"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, str]:
    binary = os.environ.get("MEMLOCK_TEST_PKI") or str(REPO / "target" / "debug" / "memlock-test-pki")
    if not os.path.exists(binary):
        pytest.fail(f"no {binary}: `cargo test --no-run` builds it (just test does)")
    out = subprocess.run([binary, str(tmp_path_factory.mktemp("pki"))], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def tls_args(pki: Dict[str, str], verify_clients: bool = False) -> list:
    options = f"ssl_chain_cert={pki['server_cert']},ssl_key={pki['server_key']}"
    if verify_clients:
        options += f",ssl_verify_mode=2,ssl_ca_cert={pki['ca']}"
    return ["-Z", "-o", options]


@pytest.fixture
def auth_file(tmp_path: Path) -> str:
    path = tmp_path / "auth"
    path.write_text(f"{USER}:{PASSWORD}\n")
    return str(path)


def opened(server: Memcached, **extra: str) -> MemcachedLock:
    lock = MemcachedLock()
    lock.configure({**server.config(), "options.timeout": "1000", "options.reconnect": "1000", **extra})
    lock.open(None)
    return lock


def test_authentication_right_wrong_and_missing(auth_file: str) -> None:
    server = Memcached("-Y", auth_file)
    try:
        good = opened(server, **{"credential.username": USER, "credential.password": PASSWORD})
        assert good.try_acquire_lock(None, "py-auth", 10_000)
        for extra in ({}, {"credential.username": USER, "credential.password": "wrong-password"}):
            lock = opened(server, **extra)
            with pytest.raises(errors.UnauthorizedException) as caught:
                lock.try_acquire_lock("t-1", "py-refused", 10_000)
            assert caught.value.code == "UNAUTHORIZED"
            assert PASSWORD not in str(caught.value) and "wrong-password" not in str(caught.value)
            lock.close(None)
        good.release_lock(None, "py-auth")
        good.close(None)
    finally:
        server.stop()


def test_a_credential_store_resolves_store_key(auth_file: str) -> None:
    from pip_services4_components.refer import Descriptor, References
    from pip_services4_config.auth import MemoryCredentialStore
    from pip_services4_config.auth.CredentialParams import CredentialParams

    server = Memcached("-Y", auth_file)
    try:
        store = MemoryCredentialStore()
        store.store(None, "mc", CredentialParams.from_tuples("username", USER, "password", PASSWORD))
        lock = MemcachedLock()
        lock.configure({**server.config(), "credential.store_key": "mc"})
        lock.set_references(References.from_tuples(Descriptor("pip-services", "credential-store", "memory", "default", "1.0"), store))
        lock.open(None)
        assert lock.try_acquire_lock(None, "py-store", 10_000)
        lock.close(None)
    finally:
        server.stop()


def test_locks_over_tls_with_the_platforms_tls(pki: Dict[str, str]) -> None:
    server = Memcached(*tls_args(pki))
    try:
        tls = {"connection.protocol": "memcacheds", "credential.ssl_ca_file": pki["ca"]}
        lock, other = opened(server, **tls), opened(server, **tls)
        lease = lock.try_acquire("py-tls", 10_000)
        assert lease is not None
        assert other.try_acquire("py-tls", 10_000) is None
        assert lock.release(lease)
        untrusted = opened(server, **{**tls, "credential.ssl_ca_file": pki["other_ca"]})
        with pytest.raises(errors.ConnectionException) as caught:
            untrusted.try_acquire_lock(None, "k", 1000)
        assert caught.value.code == "TLS_FAILED" and "not trusted" in str(caught.value)
        misnamed = opened(server, **{**tls, "credential.ssl_server_name": "wrong.example"})
        with pytest.raises(errors.ConnectionException) as caught:
            misnamed.try_acquire_lock(None, "k", 1000)
        assert caught.value.code == "TLS_FAILED"
        for l in (lock, other, untrusted, misnamed):
            l.close(None)
    finally:
        server.stop()


def test_tls_mismatches_fail_within_the_timeouts(pki: Dict[str, str]) -> None:
    tls_server, plain_server = Memcached(*tls_args(pki)), Memcached()
    try:
        cases = [
            (opened(tls_server), "CONNECT_FAILED"),
            (opened(plain_server, **{"connection.protocol": "memcacheds", "credential.ssl_ca_file": pki["ca"]}), "TLS_FAILED"),
        ]
        for lock, code in cases:
            started = time.monotonic()
            with pytest.raises(errors.ConnectionException) as caught:
                lock.try_acquire_lock(None, "k", 1000)
            assert time.monotonic() - started < 1.5, "bounded by options.reconnect and options.timeout (1 s), with a margin"
            assert caught.value.code == code and "TLS" in str(caught.value), str(caught.value)
            lock.close(None)
    finally:
        tls_server.stop()
        plain_server.stop()


def test_mutual_tls_and_insecure_mode(pki: Dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    server = Memcached(*tls_args(pki, verify_clients=True))
    try:
        tls = {"connection.protocol": "memcacheds", "credential.ssl_ca_file": pki["ca"]}
        with_cert = opened(server, **tls, **{"credential.ssl_crt_file": pki["client_cert"], "credential.ssl_key_file": pki["client_key"]})
        assert with_cert.try_acquire_lock(None, "py-mtls", 10_000)
        without = opened(server, **tls)
        with pytest.raises(errors.ConnectionException) as caught:
            without.try_acquire_lock(None, "py-mtls-2", 1000)
        assert caught.value.code == "TLS_FAILED" and "certificate" in str(caught.value), str(caught.value)
        with caplog.at_level(logging.WARNING, logger="memlock"):
            insecure = opened(server, **{**tls, "credential.ssl_ca_file": pki["other_ca"], "credential.ssl_insecure": "true",
                                         "credential.ssl_crt_file": pki["client_cert"], "credential.ssl_key_file": pki["client_key"]})
            assert insecure.try_acquire_lock(None, "py-insecure", 10_000)
        assert "verification is OFF" in caplog.text
        for l in (with_cert, without, insecure):
            l.close(None)
    finally:
        server.stop()
