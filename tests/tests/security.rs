//! TLS and authentication against real memcached processes started with `-Z` (TLS, certificates
//! generated for the run) and `-Y` (ASCII authentication): what works, what fails with which
//! code, that nothing is stored by a refused client, and that the password never shows.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memlock_host::{
    Environment, ErrorCategory, ErrorCode, Lock, MemoryCredentialStore, MemoryDiscovery,
};
use memlock_tests::memcached::free_port;
use memlock_tests::pki::TestPki;
use memlock_tests::raw::Raw;
use memlock_tests::{Memcached, runtime};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-Pa55word";

/// A memcached that requires `alice`'s password (`-Y`), with `extra` arguments.
fn auth_server(extra: &[String]) -> (Memcached, PathBuf) {
    let file = memlock_tests::memcached::auth_file(USER, PASSWORD);
    let mut args = vec!["-Y".to_owned(), file.display().to_string()];
    args.extend(extra.iter().cloned());
    (start(&args), file)
}

fn start(args: &[String]) -> Memcached {
    Memcached::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

async fn lock_with(config: &[(String, String)]) -> Lock {
    let lock = Lock::new(runtime()).await.expect("instantiate");
    lock.configure(config).await.expect("configure");
    lock.open(None).await.expect("open");
    lock
}

fn config(server: &Memcached, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut config = vec![
        ("connection.host".to_owned(), "127.0.0.1".to_owned()),
        ("connection.port".to_owned(), server.port().to_string()),
        ("options.timeout".to_owned(), "1000".to_owned()),
        ("options.reconnect".to_owned(), "1000".to_owned()),
    ];
    config.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    config
}

fn tls_config(server: &Memcached, ca: &Path, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut c = config(
        server,
        &[
            ("connection.protocol", "memcacheds"),
            ("credential.ssl_ca_file", ca.to_str().expect("utf-8")),
        ],
    );
    c.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    c
}

/// A raw client on `port`, authenticated as alice when `authenticate`.
fn raw(port: u16, authenticate: bool) -> Raw {
    let mut raw = Raw::connect(port);
    if authenticate {
        let auth = format!(
            "set a 0 0 {}\r\n{USER} {PASSWORD}\r\n",
            USER.len() + 1 + PASSWORD.len()
        );
        assert_eq!(raw.command(auth.as_bytes()), "STORED");
    }
    raw
}

/// One `stats` number: `total_items` counts every item ever stored (one stored already expired
/// too), `total_connections` every connection accepted.
fn stat(raw: &mut Raw, name: &str) -> u64 {
    raw.stats()
        .into_iter()
        .find_map(|(k, v)| (k == name).then(|| v.parse().ok()).flatten())
        .unwrap_or_else(|| panic!("no stat {name}"))
}

#[tokio::test]
async fn the_right_password_locks_on_an_authenticating_server() {
    let (server, _file) = auth_server(&[]);
    let credentials = [
        ("credential.username", USER),
        ("credential.password", PASSWORD),
    ];
    let lock = lock_with(&config(&server, &credentials)).await;
    assert!(
        lock.try_acquire_lock(None, b"job", 10_000)
            .await
            .expect("try")
    );
    let other = lock_with(&config(&server, &credentials)).await;
    assert!(
        !other
            .try_acquire_lock(None, b"job", 10_000)
            .await
            .expect("busy")
    );
    lock.release_lock(None, b"job").await.expect("release");
    assert!(
        other
            .try_acquire_lock(None, b"job", 10_000)
            .await
            .expect("free again")
    );
    // The incarnation item and two acquires: authenticating stored nothing.
    assert_eq!(stat(&mut raw(server.port(), true), "total_items"), 3);
}

#[tokio::test]
async fn missing_or_wrong_credentials_are_unauthorized_and_store_nothing() {
    let (server, _file) = auth_server(&[]);
    for extra in [
        vec![],
        vec![
            ("credential.username", USER),
            ("credential.password", "wrong-password"),
        ],
        vec![
            ("credential.username", "mallory"),
            ("credential.password", PASSWORD),
        ],
    ] {
        let lock = lock_with(&config(&server, &extra)).await;
        let err = lock
            .try_acquire_lock(None, b"refused", 10_000)
            .await
            .expect_err("refused");
        assert_eq!(
            err.code(),
            Some(ErrorCode::Unauthorized),
            "{extra:?}: {err}"
        );
        assert_eq!(err.category(), ErrorCategory::Unauthorized);
        let text = format!("{err} {err:?}");
        assert!(
            !text.contains(PASSWORD) && !text.contains("wrong-password"),
            "{text}"
        );
        if extra.is_empty() {
            assert!(
                text.contains("credential.username"),
                "says what to set: {text}"
            );
        }
    }
    assert_eq!(
        stat(&mut raw(server.port(), true), "total_items"),
        0,
        "nothing stored"
    );
}

#[tokio::test]
async fn a_password_is_never_sent_to_a_server_that_does_not_ask() {
    let server = Memcached::start();
    let lock = lock_with(&config(
        &server,
        &[
            ("credential.username", USER),
            ("credential.password", PASSWORD),
        ],
    ))
    .await;
    assert!(
        lock.try_acquire_lock(None, b"open-server", 10_000)
            .await
            .expect("try")
    );
    // The incarnation item and the acquire; an authentication `set` would be a third, even
    // though it is stored already expired.
    assert_eq!(stat(&mut raw(server.port(), false), "total_items"), 2);
}

#[tokio::test]
async fn a_credential_store_key_resolves_through_references() {
    let (server, _file) = auth_server(&[]);
    let mut store = MemoryCredentialStore::new();
    store.store("memcached-creds", USER, PASSWORD);
    let env = Environment {
        credential_store: Arc::new(store),
        ..Environment::default()
    };
    let lock = Lock::with_environment(runtime(), env)
        .await
        .expect("instantiate");
    lock.configure(&config(
        &server,
        &[("credential.store_key", "memcached-creds")],
    ))
    .await
    .expect("configure");
    let err = lock.open(None).await.expect_err("no store referenced yet");
    assert_eq!(err.code(), Some(ErrorCode::CannotResolve), "{err}");
    lock.set_references(&["pip-services:credential-store:memory:default:1.0".to_owned()])
        .await
        .expect("references");
    lock.open(None).await.expect("open");
    assert!(
        lock.try_acquire_lock(None, b"stored-creds", 10_000)
            .await
            .expect("try")
    );
}

#[tokio::test]
async fn locks_over_tls() {
    let pki = TestPki::temporary().expect("certificates");
    let server = start(&pki.memcached_args(false));
    let lock = lock_with(&tls_config(&server, &pki.ca, &[])).await;
    let lease = lock
        .try_acquire(None, b"tls-key", 10_000)
        .await
        .expect("try")
        .expect("free");
    let other = lock_with(&tls_config(&server, &pki.ca, &[])).await;
    assert!(
        other
            .try_acquire(None, b"tls-key", 10_000)
            .await
            .expect("busy")
            .is_none()
    );
    assert!(lock.release(None, &lease).await.expect("release"));
    // By name too: the certificate is for localhost and 127.0.0.1.
    let by_name = lock_with(&tls_config(
        &server,
        &pki.ca,
        &[("connection.host", "localhost")],
    ))
    .await;
    assert!(
        by_name
            .try_acquire_lock(None, b"tls-key", 10_000)
            .await
            .expect("try")
    );
}

#[tokio::test]
async fn an_untrusted_or_misnamed_certificate_is_a_tls_error_naming_the_cause() {
    let pki = TestPki::temporary().expect("certificates");
    let server = start(&pki.memcached_args(false));
    let lock = lock_with(&tls_config(&server, &pki.other_ca, &[])).await;
    let err = lock
        .try_acquire_lock(None, b"k", 1000)
        .await
        .expect_err("untrusted");
    assert_eq!(err.code(), Some(ErrorCode::TlsFailed), "{err}");
    assert!(err.to_string().contains("not trusted"), "{err}");
    let misnamed = lock_with(&tls_config(
        &server,
        &pki.ca,
        &[("credential.ssl_server_name", "wrong.example")],
    ))
    .await;
    let err = misnamed
        .try_acquire_lock(None, b"k", 1000)
        .await
        .expect_err("another name");
    assert_eq!(err.code(), Some(ErrorCode::TlsFailed), "{err}");
    // Turning verification off is explicit, and then the same server is accepted.
    let insecure = lock_with(&tls_config(
        &server,
        &pki.other_ca,
        &[("credential.ssl_insecure", "true")],
    ))
    .await;
    assert!(
        insecure
            .try_acquire_lock(None, b"k", 1000)
            .await
            .expect("insecure")
    );
}

#[tokio::test]
async fn tls_and_plaintext_mismatches_fail_within_the_timeouts() {
    let pki = TestPki::temporary().expect("certificates");
    let tls_server = start(&pki.memcached_args(false));
    let plain_server = Memcached::start();
    // A plaintext client against a TLS server, a TLS client against a plaintext one.
    let cases = [
        (
            config(&tls_server, &[]),
            ErrorCode::ConnectFailed,
            "plaintext client, TLS server",
        ),
        (
            tls_config(&plain_server, &pki.ca, &[]),
            ErrorCode::TlsFailed,
            "TLS client, plaintext server",
        ),
    ];
    for (config, code, case) in cases {
        let lock = lock_with(&config).await;
        let started = Instant::now();
        let err = lock
            .try_acquire_lock(None, b"k", 1000)
            .await
            .expect_err(case);
        // options.reconnect and options.timeout (1 s each) bound connecting, the handshake
        // included; the margin is for a loaded machine.
        let took = started.elapsed();
        assert!(took < Duration::from_millis(1500), "{case}: took {took:?}");
        assert_eq!(err.code(), Some(code), "{case}: {err}");
        assert!(
            err.to_string().contains("TLS"),
            "{case}: the error points at TLS: {err}"
        );
    }
}

/// A certificate that does not verify fails the same way every time: it is not retried
/// (`options.retries` is for connections that did not happen).
#[tokio::test]
async fn a_failed_handshake_is_not_retried() {
    let pki = TestPki::temporary().expect("certificates");
    let plain_port = free_port();
    let server = start(&pki.memcached_args_with_plain(false, plain_port));
    let mut look = raw(plain_port, false);
    let before = stat(&mut look, "total_connections");
    let lock = lock_with(&tls_config(
        &server,
        &pki.other_ca,
        &[("options.retries", "5")],
    ))
    .await;
    let err = lock
        .try_acquire_lock(None, b"k", 1000)
        .await
        .expect_err("untrusted");
    assert_eq!(err.code(), Some(ErrorCode::TlsFailed), "{err}");
    // memcached counts a connection in the worker thread it hands the connection to, which may
    // lag behind the client's failed handshake on a loaded machine: wait for the count to move.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut connections = stat(&mut look, "total_connections") - before;
    while connections == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        connections = stat(&mut look, "total_connections") - before;
    }
    assert_eq!(connections, 1, "one handshake, no retries");
}

/// The configured protocol and credentials hold for what discovery resolves: a discovered
/// connection cannot turn TLS off.
#[tokio::test]
async fn discovery_cannot_turn_tls_off() {
    let pki = TestPki::temporary().expect("certificates");
    let plain = Memcached::start();
    let mut discovery = MemoryDiscovery::new();
    discovery.register(
        "cache",
        vec![
            ("host".into(), "127.0.0.1".into()),
            ("port".into(), plain.port().to_string()),
            ("protocol".into(), "memcached".into()),
        ],
    );
    let env = Environment {
        discovery: Arc::new(discovery),
        ..Environment::default()
    };
    let lock = Lock::with_environment(runtime(), env)
        .await
        .expect("instantiate");
    lock.configure(&[
        ("connection.discovery_key", "cache"),
        ("connection.protocol", "memcacheds"),
        ("credential.ssl_ca_file", pki.ca.to_str().expect("utf-8")),
        ("options.reconnect", "1000"),
    ])
    .await
    .expect("configure");
    lock.set_references(&["pip-services:discovery:memory:default:1.0".to_owned()])
        .await
        .expect("references");
    lock.open(None).await.expect("open");
    let err = lock
        .try_acquire_lock(None, b"k", 1000)
        .await
        .expect_err("TLS to a plaintext server");
    assert_eq!(err.code(), Some(ErrorCode::TlsFailed), "{err}");
}

#[tokio::test]
async fn mutual_tls_presents_the_client_certificate() {
    let pki = TestPki::temporary().expect("certificates");
    let server = start(&pki.memcached_args(true));
    let without = lock_with(&tls_config(&server, &pki.ca, &[])).await;
    let err = without
        .try_acquire_lock(None, b"mtls", 1000)
        .await
        .expect_err("no client certificate");
    assert_eq!(err.code(), Some(ErrorCode::TlsFailed), "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
    let with = lock_with(&tls_config(
        &server,
        &pki.ca,
        &[
            (
                "credential.ssl_crt_file",
                pki.client_cert.to_str().expect("utf-8"),
            ),
            (
                "credential.ssl_key_file",
                pki.client_key.to_str().expect("utf-8"),
            ),
        ],
    ))
    .await;
    assert!(
        with.try_acquire_lock(None, b"mtls", 10_000)
            .await
            .expect("with a certificate")
    );
}

#[tokio::test]
async fn tls_and_authentication_together() {
    let pki = TestPki::temporary().expect("certificates");
    let (server, _file) = auth_server(&pki.memcached_args(false));
    let lock = lock_with(&tls_config(
        &server,
        &pki.ca,
        &[
            ("credential.username", USER),
            ("credential.password", PASSWORD),
        ],
    ))
    .await;
    assert!(
        lock.try_acquire_lock(None, b"both", 10_000)
            .await
            .expect("try")
    );
}
