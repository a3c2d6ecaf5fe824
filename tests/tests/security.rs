//! TLS and authentication against real memcached processes started with `-Z` (TLS, certificates
//! generated for the run) and `-Y` (ASCII authentication): what works, what fails with which
//! code, that nothing is stored by a refused client, and that the password never shows.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memlock_host::{
    Environment, ErrorCategory, ErrorCode, Lock, MemoryCredentialStore, MemoryDiscovery,
};
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
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (Memcached::start_with(&args), file)
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

/// What an authenticated raw client finds under `key` (`EN`: nothing).
fn stored_under(server: &Memcached, key: &str) -> String {
    let mut raw = Raw::connect(server.port());
    let auth = format!(
        "set a 0 0 {}\r\n{USER} {PASSWORD}\r\n",
        USER.len() + 1 + PASSWORD.len()
    );
    assert_eq!(raw.command(auth.as_bytes()), "STORED");
    raw.command(format!("mg {key} v\r\n").as_bytes())
}

#[tokio::test]
async fn the_right_password_locks_on_an_authenticating_server() {
    let (server, _dir) = auth_server(&[]);
    let lock = lock_with(&config(
        &server,
        &[
            ("credential.username", USER),
            ("credential.password", PASSWORD),
        ],
    ))
    .await;
    assert!(
        lock.try_acquire_lock(None, b"job", 10_000)
            .await
            .expect("try")
    );
    let other = lock_with(&config(
        &server,
        &[
            ("credential.username", USER),
            ("credential.password", PASSWORD),
        ],
    ))
    .await;
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
    assert_eq!(
        stored_under(&server, "memlock:auth"),
        "EN",
        "authentication stores nothing"
    );
}

#[tokio::test]
async fn missing_or_wrong_credentials_are_unauthorized_and_store_nothing() {
    let (server, _dir) = auth_server(&[]);
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
    assert_eq!(stored_under(&server, "refused"), "EN");
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
    let mut raw = Raw::connect(server.port());
    assert_eq!(raw.command(b"mg memlock:auth v\r\n"), "EN");
}

#[tokio::test]
async fn a_credential_store_key_resolves_through_references() {
    let (server, _dir) = auth_server(&[]);
    let mut store = MemoryCredentialStore::new();
    store.store("memcached-creds", USER, PASSWORD);
    let env = Environment {
        credential_store: Arc::new(store),
        discovery: Arc::new(MemoryDiscovery::new()),
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

#[tokio::test]
async fn locks_over_tls() {
    let pki = TestPki::temporary().expect("certificates");
    let server = Memcached::start_with(
        &pki.memcached_args(false)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
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
async fn an_untrusted_certificate_is_a_tls_error_naming_the_cause() {
    let pki = TestPki::temporary().expect("certificates");
    let server = Memcached::start_with(
        &pki.memcached_args(false)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let lock = lock_with(&tls_config(&server, &pki.other_ca, &[])).await;
    let err = lock
        .try_acquire_lock(None, b"k", 1000)
        .await
        .expect_err("untrusted");
    assert_eq!(err.code(), Some(ErrorCode::TlsFailed), "{err}");
    assert!(err.to_string().contains("not trusted"), "{err}");
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
    let tls_server = Memcached::start_with(
        &pki.memcached_args(false)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let plain_server = Memcached::start();
    // A plaintext client against a TLS server, a TLS client against a plaintext one.
    let cases = [
        (config(&tls_server, &[]), "plaintext client, TLS server"),
        (
            tls_config(&plain_server, &pki.ca, &[]),
            "TLS client, plaintext server",
        ),
    ];
    for (config, case) in cases {
        let lock = lock_with(&config).await;
        let started = Instant::now();
        let err = lock
            .try_acquire_lock(None, b"k", 1000)
            .await
            .expect_err(case);
        // options.reconnect (1 s) bounds connecting, handshake included; a margin for the
        // machine.
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{case}: took {:?}",
            started.elapsed()
        );
        assert!(
            matches!(
                err.code(),
                Some(ErrorCode::TlsFailed | ErrorCode::ConnectFailed)
            ),
            "{case}: {err}"
        );
        assert!(
            err.to_string().contains("TLS"),
            "{case}: the error points at TLS: {err}"
        );
    }
}

#[tokio::test]
async fn mutual_tls_presents_the_client_certificate() {
    let pki = TestPki::temporary().expect("certificates");
    let server = Memcached::start_with(
        &pki.memcached_args(true)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let without = lock_with(&tls_config(&server, &pki.ca, &[])).await;
    let err = without
        .try_acquire_lock(None, b"mtls", 1000)
        .await
        .expect_err("no client certificate");
    assert!(
        matches!(
            err.code(),
            Some(ErrorCode::TlsFailed | ErrorCode::ConnectFailed)
        ),
        "{err}"
    );
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
    let (server, _dir) = auth_server(&pki.memcached_args(false));
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
