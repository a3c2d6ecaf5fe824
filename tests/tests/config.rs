//! Configuration: pip-services keys, discovery, and clear errors for bad values.

use std::sync::Arc;

use memlock_host::{Environment, ErrorCategory, ErrorCode, Lock, MemoryDiscovery};
use memlock_tests::{Memcached, runtime};

#[tokio::test]
async fn bad_values_are_misconfiguration_errors_naming_the_key() {
    let lock = Lock::new(runtime()).await.expect("instantiate");
    for (key, value) in [
        ("connection.port", "99999"),
        ("connection.uri", "http://x"),
        ("options.timeout", "soon"),
        ("options.retries", "-1"),
        ("options.max_expiration", "2592001"),
        ("options.remove", "true"),
        ("options.unknown", "1"),
    ] {
        let err = lock.configure(&[(key, value)]).await.expect_err(key);
        assert_eq!(err.code(), Some(ErrorCode::InvalidConfig), "{key}: {err}");
        assert_eq!(err.category(), ErrorCategory::Misconfiguration);
        assert!(err.to_string().contains(key), "{err}");
    }
}

/// Through the host, the seed's documented options that are not memlock's own defaults (the
/// guest's config tests try every documented key): a pip-services config is never refused for a
/// key pip-services documents.
#[tokio::test]
async fn the_seed_documented_options_configure_a_working_lock() {
    let server = Memcached::start();
    let lock = Lock::new(runtime()).await.expect("instantiate");
    let mut config = server.config();
    for (key, value) in [("options.max_size", "1000"), ("options.retries", "3")] {
        config.push((key.to_string(), value.to_string()));
    }
    config.push(("options.timeout".into(), "60000".into()));
    lock.configure(&config).await.expect("the seed's options");
    lock.open(None).await.expect("open");
    assert!(lock.try_acquire_lock(None, b"k", 1000).await.expect("try"));
}

#[tokio::test]
async fn no_connection_is_reported_at_open() {
    let lock = Lock::new(runtime()).await.expect("instantiate");
    lock.configure::<&str, &str>(&[])
        .await
        .expect("empty config");
    let err = lock.open(Some("o")).await.expect_err("nothing configured");
    assert_eq!(err.code(), Some(ErrorCode::NoConnection));
}

#[tokio::test]
async fn host_and_port_keys_work() {
    let server = Memcached::start();
    let lock = Lock::new(runtime()).await.expect("instantiate");
    let port = server.port().to_string();
    lock.configure(&[
        ("connection.host", "127.0.0.1"),
        ("connection.port", port.as_str()),
    ])
    .await
    .expect("configure");
    lock.open(None).await.expect("open");
    assert!(lock.try_acquire_lock(None, b"k", 1000).await.expect("try"));
}

#[tokio::test]
async fn discovery_key_resolves_through_references() {
    let server = Memcached::start();
    let mut discovery = MemoryDiscovery::new();
    discovery.register("cache", vec![("uri".into(), server.uri())]);
    let env = Environment {
        discovery: Arc::new(discovery),
        ..Environment::default()
    };
    let lock = Lock::with_environment(runtime(), env)
        .await
        .expect("instantiate");
    lock.configure(&[("connection.discovery_key", "cache")])
        .await
        .expect("configure");

    let err = lock
        .open(None)
        .await
        .expect_err("no discovery referenced yet");
    assert_eq!(err.code(), Some(ErrorCode::CannotResolve));
    lock.set_references(&["pip-services:discovery:memory:default:1.0".to_string()])
        .await
        .expect("refs");
    lock.open(None).await.expect("open through discovery");
    assert!(lock.try_acquire_lock(None, b"k", 1000).await.expect("try"));
}

#[tokio::test]
async fn keys_shard_across_servers() {
    let (s1, s2) = (Memcached::start(), Memcached::start());
    let lock = Lock::new(runtime()).await.expect("instantiate");
    lock.configure(&[
        ("connections.1.uri", s1.uri()),
        ("connections.2.uri", s2.uri()),
    ])
    .await
    .expect("configure");
    lock.open(None).await.expect("open");
    let (mut on1, mut on2) = (0, 0);
    for i in 0..32 {
        let key = format!("shard-{i}");
        assert!(
            lock.try_acquire_lock(None, key.as_bytes(), 10_000)
                .await
                .expect("try")
        );
        on1 += usize::from(
            memlock_tests::raw::Raw::connect(s1.port())
                .get(key.as_bytes())
                .is_some(),
        );
        on2 += usize::from(
            memlock_tests::raw::Raw::connect(s2.port())
                .get(key.as_bytes())
                .is_some(),
        );
    }
    assert_eq!(on1 + on2, 32, "each key on exactly one server");
    assert!(on1 > 0 && on2 > 0, "keys spread: {on1} / {on2}");
}
