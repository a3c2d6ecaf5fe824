//! `BlockingLock`, the synchronous embedding, against real memcached: the same lock semantics as
//! the async `Lock` (it runs the same component), its calls bounded by the configured timeouts on
//! the caller's thread, TLS and authentication, quorum mode, and leases that pass between the two.

use std::time::{Duration, Instant};

use memlock_host::{BlockingLock, ErrorCode, Lease};
use memlock_tests::pki::TestPki;
use memlock_tests::raw::Raw;
use memlock_tests::{Memcached, runtime};

/// A generous bound for "did not hang": the configured timeout plus scheduling slack.
const SLACK: Duration = Duration::from_secs(2);

fn blocking_lock(config: &[(String, String)]) -> BlockingLock {
    let mut lock = BlockingLock::new(runtime()).expect("instantiate");
    lock.configure(config).expect("configure");
    lock.open(None).expect("open");
    lock
}

fn config(servers: &[&Memcached], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut config: Vec<(String, String)> = match servers {
        [one] => vec![
            ("connection.host".into(), "127.0.0.1".into()),
            ("connection.port".into(), one.port().to_string()),
        ],
        many => many
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("connections.{i}.uri"), s.uri()))
            .collect(),
    };
    config.push(("options.timeout".into(), "500".into()));
    config.push(("options.reconnect".into(), "500".into()));
    config.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    config
}

fn must_acquire(lock: &mut BlockingLock, key: &[u8], ttl_ms: i64) -> Lease {
    lock.try_acquire(None, key, ttl_ms)
        .expect("try_acquire")
        .expect("the key is free")
}

#[test]
fn acquire_contend_release_and_nothing_left_behind() {
    let server = Memcached::start();
    let mut a = blocking_lock(&config(&[&server], &[]));
    let mut b = blocking_lock(&config(&[&server], &[]));
    let lease = must_acquire(&mut a, b"job", 10_000);
    assert!(lease.remaining() > Duration::from_secs(9));
    assert!(b.try_acquire(None, b"job", 10_000).expect("try").is_none());
    let started = Instant::now();
    let err = b.acquire(None, b"job", 10_000, 300).expect_err("busy");
    assert_eq!(err.code(), Some(ErrorCode::LockTimeout), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(started.elapsed() < Duration::from_millis(300) + SLACK);
    let extended = a.extend(None, &lease, 20_000).expect("extend");
    assert!(extended.remaining() > Duration::from_secs(19));
    assert!(a.release(None, &extended).expect("release"));
    assert!(!a.release(None, &extended).expect("released already"));
    assert_eq!(Raw::connect(server.port()).get(b"job"), None);
    let lease = must_acquire(&mut b, b"job", 10_000);
    assert!(b.release(None, &lease).expect("release"));
    a.close(None).expect("close");
    assert!(!a.is_open().expect("is_open"));
}

#[test]
fn the_seed_api_and_a_blocking_acquire_that_waits_out_a_crashed_holder() {
    let server = Memcached::start();
    let mut holder = blocking_lock(&config(&[&server], &[]));
    let mut waiter = blocking_lock(&config(&[&server], &[]));
    // The holder never releases (it "crashed"): the key frees itself when the ttl runs out.
    assert!(holder.try_acquire_lock(None, b"seed", 1_000).expect("try"));
    assert!(!waiter.try_acquire_lock(None, b"seed", 1_000).expect("busy"));
    waiter
        .acquire_lock(None, b"seed", 10_000, 5_000)
        .expect("acquired once the holder's ttl ran out");
    waiter.release_lock(None, b"seed").expect("release");
    assert_eq!(Raw::connect(server.port()).get(b"seed"), None);
}

#[test]
fn a_lease_passes_between_the_async_and_the_blocking_lock() {
    let server = Memcached::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let lock = rt.block_on(memlock_tests::open_lock(&server, &[]));
    let lease = rt.block_on(memlock_tests::must_acquire(&lock, b"shared", 10_000));
    let mut blocking = blocking_lock(&config(&[&server], &[]));
    let handle = Lease::from_handle(&lease.handle()).expect("handle");
    let extended = blocking.extend(None, &handle, 10_000).expect("extend");
    assert!(blocking.release(None, &extended).expect("release"));
    assert!(
        !rt.block_on(lock.release(None, &lease))
            .expect("gone already")
    );
}

#[test]
fn a_stalled_server_times_out_within_the_timeout_and_the_lock_recovers() {
    let server = Memcached::start();
    let mut lock = blocking_lock(&config(&[&server], &[]));
    let lease = must_acquire(&mut lock, b"a", 10_000);
    assert!(lock.release(None, &lease).expect("release"));
    server.pause();
    let started = Instant::now();
    let err = lock.try_acquire(None, b"a", 10_000).expect_err("stalled");
    let took = started.elapsed();
    server.resume();
    assert_eq!(err.code(), Some(ErrorCode::Timeout), "{err}");
    assert!(took < Duration::from_millis(500) + SLACK, "{took:?}");
    // The acquire that may have been applied is cleaned up, owner-checked, before the next one.
    let lease = must_acquire(&mut lock, b"a", 10_000);
    assert!(lock.release(None, &lease).expect("release"));
}

#[test]
fn a_server_that_is_down_fails_at_once() {
    let port = memlock_tests::memcached::free_port();
    let mut lock = BlockingLock::new(runtime()).expect("instantiate");
    lock.configure(&[
        ("connection.host", "127.0.0.1".to_owned()),
        ("connection.port", port.to_string()),
        ("options.reconnect", "500".to_owned()),
    ])
    .expect("configure");
    lock.open(None).expect("open is lazy");
    let started = Instant::now();
    let err = lock.try_acquire(None, b"a", 1_000).expect_err("down");
    assert!(
        matches!(
            err.code(),
            Some(ErrorCode::ConnectFailed | ErrorCode::ServerDown)
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_millis(500) + SLACK);
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let server = Memcached::start();
    let mut lock = blocking_lock(&config(&[&server], &[]));
    let err = lock.try_acquire(None, b"", 1_000).expect_err("empty key");
    assert_eq!(err.code(), Some(ErrorCode::InvalidKey), "{err}");
    let err = lock.try_acquire(None, b"k", 0).expect_err("ttl 0");
    assert_eq!(err.code(), Some(ErrorCode::InvalidTtl), "{err}");
    let mut fresh = BlockingLock::new(runtime()).expect("instantiate");
    let err = fresh
        .configure(&[("options.timeout", "soon")])
        .expect_err("bad value");
    assert_eq!(err.code(), Some(ErrorCode::InvalidConfig), "{err}");
}

#[test]
fn tls_and_authentication() {
    let pki = TestPki::temporary().expect("certificates");
    let auth = memlock_tests::memcached::auth_file("alice", "s3cret");
    let mut args = pki.memcached_args(false);
    args.extend(["-Y".to_owned(), auth.display().to_string()]);
    let server = Memcached::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let ca = pki.ca.to_str().expect("utf-8");
    let secure = [
        ("connection.protocol", "memcacheds"),
        ("credential.ssl_ca_file", ca),
        ("credential.username", "alice"),
        ("credential.password", "s3cret"),
    ];
    let mut lock = blocking_lock(&config(&[&server], &secure));
    let lease = must_acquire(&mut lock, b"tls", 10_000);
    assert!(lock.release(None, &lease).expect("release"));
    let wrong_name = [
        ("connection.protocol", "memcacheds"),
        ("credential.ssl_ca_file", ca),
        ("credential.ssl_server_name", "not-the-server.example"),
    ];
    let mut lock = blocking_lock(&config(&[&server], &wrong_name));
    let err = lock.try_acquire(None, b"tls", 10_000).expect_err("name");
    assert_eq!(err.code(), Some(ErrorCode::TlsFailed), "{err}");
    let wrong_password = [
        ("connection.protocol", "memcacheds"),
        ("credential.ssl_ca_file", ca),
        ("credential.username", "alice"),
        ("credential.password", "wrong"),
    ];
    let mut lock = blocking_lock(&config(&[&server], &wrong_password));
    let err = lock
        .try_acquire(None, b"tls", 10_000)
        .expect_err("password");
    assert_eq!(err.code(), Some(ErrorCode::Unauthorized), "{err}");
}

#[test]
fn quorum_mode_with_one_of_three_servers_down() {
    let mut servers = [Memcached::start(), Memcached::start(), Memcached::start()];
    servers[2].stop();
    let refs: Vec<&Memcached> = servers.iter().collect();
    let quorum = [("options.mode", "quorum"), ("options.max_lease", "1500")];
    let mut a = blocking_lock(&config(&refs, &quorum));
    let mut b = blocking_lock(&config(&refs, &quorum));
    // Just started, the servers count only once they have run max_lease: a blocking acquire
    // waits that out.
    let lease = a.acquire(None, b"q", 1_000, 10_000).expect("acquire");
    assert_eq!(lease.fencing_token.0, 0, "no fencing tokens in quorum mode");
    assert!(b.try_acquire(None, b"q", 1_000).expect("try").is_none());
    assert!(a.release(None, &lease).expect("release"));
    // b's connections are newer: it too may have to wait for the servers to count.
    let lease = b.acquire(None, b"q", 1_000, 10_000).expect("acquire");
    assert!(b.release(None, &lease).expect("release"));
}

/// A TLS server that stops answering (SIGSTOP: the kernel still completes TCP connects) gets the
/// same error from `BlockingLock` as from the async `Lock`, in the same time.
#[test]
fn a_stalled_tls_server_fails_as_it_does_for_the_async_lock() {
    let pki = TestPki::temporary().expect("certificates");
    let args = pki.memcached_args(false);
    let server = Memcached::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let ca = pki.ca.to_str().expect("utf-8");
    let tls = [
        ("connection.protocol", "memcacheds"),
        ("credential.ssl_ca_file", ca),
    ];
    let config = config(&[&server], &tls);
    server.pause();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let async_error = rt.block_on(async {
        let lock = memlock_host::Lock::new(runtime())
            .await
            .expect("instantiate");
        lock.configure(&config).await.expect("configure");
        lock.open(None).await.expect("open");
        lock.try_acquire(None, b"tls", 10_000)
            .await
            .expect_err("stalled")
    });
    let async_took = started.elapsed();
    let started = Instant::now();
    let error = blocking_lock(&config)
        .try_acquire(None, b"tls", 10_000)
        .expect_err("stalled");
    let took = started.elapsed();
    server.resume();
    assert_eq!(error.code(), async_error.code(), "{error} / {async_error}");
    assert!(took < async_took + SLACK, "{took:?} against {async_took:?}");
}

/// A server that answers the TLS handshake a byte at a time, each byte well within the read
/// timeout, must not stretch a connect past `options.reconnect`: the deadline bounds the whole
/// handshake, not each read.
#[test]
fn a_trickling_tls_handshake_is_bounded_by_the_connect_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || trickle(stream));
        }
    });
    let config = vec![
        ("connection.host".to_owned(), "127.0.0.1".to_owned()),
        ("connection.port".to_owned(), port.to_string()),
        ("connection.protocol".to_owned(), "memcacheds".to_owned()),
        ("options.reconnect".to_owned(), "500".to_owned()),
        ("options.timeout".to_owned(), "500".to_owned()),
        ("options.retries".to_owned(), "0".to_owned()),
    ];
    let (done, outcome) = std::sync::mpsc::channel();
    let started = Instant::now();
    std::thread::spawn(move || {
        let result = blocking_lock(&config).try_acquire(None, b"tls", 10_000);
        let _ = done.send(result.map(|_| ()));
    });
    let result = outcome
        .recv_timeout(Duration::from_secs(10))
        .expect("the call returned within 10 s");
    let error = result.expect_err("no TLS server there");
    assert!(
        started.elapsed() < Duration::from_millis(500) + SLACK,
        "took {:?}: {error}",
        started.elapsed()
    );
}

/// Reads the client's hello, then sends a TLS record header announcing 16 KiB and one byte of it
/// every 100 ms.
fn trickle(mut stream: std::net::TcpStream) {
    use std::io::{Read, Write};
    let mut hello = [0u8; 4096];
    if stream.read(&mut hello).is_err() {
        return;
    }
    if stream.write_all(&[0x16, 0x03, 0x03, 0x40, 0x00]).is_err() {
        return;
    }
    for _ in 0..16_384 {
        std::thread::sleep(Duration::from_millis(100));
        if stream.write_all(&[0x02]).is_err() {
            return;
        }
    }
}
