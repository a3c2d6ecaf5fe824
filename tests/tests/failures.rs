//! Servers that are down, stalled, or not memcached at all: clear errors, bounded time, no panic,
//! and normal service once the server is back.

use std::time::{Duration, Instant};

use memlock_host::ErrorCategory;
use memlock_host::ErrorCode;
use memlock_tests::fake_server::{FakeServer, Script};
use memlock_tests::raw::Raw;
use memlock_tests::{Memcached, open_lock, runtime};

/// A generous bound for "did not hang": the configured timeout plus scheduling slack.
const SLACK: Duration = Duration::from_secs(2);

async fn lock_at(uri: &str, extra: &[(&str, &str)]) -> memlock_host::Lock {
    let lock = memlock_host::Lock::new(runtime())
        .await
        .expect("instantiate");
    let mut config = vec![("connection.uri".to_string(), uri.to_string())];
    config.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    lock.configure(&config).await.expect("configure");
    lock.open(None).await.expect("open");
    lock
}

#[tokio::test]
async fn server_down_is_a_connection_error() {
    let mut server = Memcached::start();
    let uri = server.uri();
    server.stop();
    let lock = lock_at(&uri, &[("options.reconnect", "500")]).await;
    let started = Instant::now();
    let err = lock
        .try_acquire_lock(Some("down"), b"k", 1000)
        .await
        .expect_err("nothing listens");
    assert_eq!(err.code(), Some(ErrorCode::ConnectFailed), "{err}");
    assert_eq!(err.category(), ErrorCategory::NoResponse);
    assert!(started.elapsed() < Duration::from_millis(500) + SLACK);
}

#[tokio::test]
async fn failing_server_is_marked_down_then_retried() {
    let mut server = Memcached::start();
    let lock = open_lock(
        &server,
        &[("options.failures", "2"), ("options.retry", "300000")],
    )
    .await;
    server.stop();
    for _ in 0..2 {
        let err = lock
            .try_acquire_lock(None, b"k", 1000)
            .await
            .expect_err("down");
        assert_eq!(err.code(), Some(ErrorCode::ConnectFailed));
    }
    let err = lock
        .try_acquire_lock(None, b"k", 1000)
        .await
        .expect_err("marked down");
    assert_eq!(err.code(), Some(ErrorCode::ServerDown), "{err}");
}

#[tokio::test]
async fn stalled_server_times_out_and_the_orphan_is_cleaned_up() {
    let server = Memcached::start();
    let lock = open_lock(&server, &[("options.timeout", "500")]).await;
    assert!(
        lock.try_acquire_lock(None, b"warm", 1000)
            .await
            .expect("server works")
    );

    server.pause();
    let started = Instant::now();
    let err = lock
        .try_acquire_lock(Some("stall"), b"orphan", 60_000)
        .await
        .expect_err("stalled");
    assert_eq!(err.code(), Some(ErrorCode::Timeout), "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(500) + SLACK,
        "took {:?}",
        started.elapsed()
    );
    server.resume();

    // The stalled add was applied once the server resumed: a lock nobody owns, with a finite ttl.
    let mut raw = Raw::connect(server.port());
    // Wait (bounded) for the resumed server to process the request it buffered while stopped.
    let deadline = Instant::now() + Duration::from_secs(5);
    let orphan = loop {
        if let Some(item) = raw.get(b"orphan") {
            break item;
        }
        assert!(
            Instant::now() < deadline,
            "the server never applied the timed-out add"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(orphan.ttl > 0);
    // The next operation on that server deletes it, owner-checked, before anything else.
    assert!(
        lock.try_acquire_lock(None, b"other", 1000)
            .await
            .expect("normal service after SIGCONT")
    );
    assert!(raw.get(b"orphan").is_none(), "orphan cleaned up");
    assert!(
        lock.try_acquire_lock(None, b"orphan", 1000)
            .await
            .expect("key usable again")
    );
}

#[tokio::test]
async fn garbage_replies_are_protocol_errors() {
    for reply in [
        &b"HELLO WORLD\r\n"[..],
        b"HD c1 O999\r\n",
        b"VA 99999999 c1 O1\r\n",
        b"HD c1x O1\r\n",
    ] {
        let fake = FakeServer::start(Script::Reply(reply));
        let lock = lock_at(&fake.uri(), &[("options.timeout", "1000")]).await;
        let started = Instant::now();
        let err = lock
            .try_acquire_lock(None, b"k", 1000)
            .await
            .expect_err("garbage");
        assert_eq!(err.code(), Some(ErrorCode::Protocol), "{reply:?}: {err}");
        assert_eq!(err.category(), ErrorCategory::FailedInvocation);
        assert!(started.elapsed() < Duration::from_secs(1) + SLACK);
    }
    let fake = FakeServer::start(Script::Flood);
    let lock = lock_at(&fake.uri(), &[("options.timeout", "1000")]).await;
    let err = lock
        .try_acquire_lock(None, b"k", 1000)
        .await
        .expect_err("endless line");
    assert_eq!(err.code(), Some(ErrorCode::Protocol), "{err}");
}

#[tokio::test]
async fn reply_cut_off_by_close_is_a_connection_error() {
    let fake = FakeServer::start(Script::ReplyThenClose(b"HD c1"));
    let lock = lock_at(&fake.uri(), &[("options.timeout", "1000")]).await;
    let err = lock
        .try_acquire_lock(None, b"k", 1000)
        .await
        .expect_err("closed mid-reply");
    assert_eq!(err.code(), Some(ErrorCode::ConnectFailed), "{err}");
}

#[tokio::test]
async fn server_errors_mean_not_acquired() {
    let fake = FakeServer::start(Script::Reply(
        b"SERVER_ERROR out of memory storing object\r\n",
    ));
    let lock = lock_at(&fake.uri(), &[]).await;
    let err = lock
        .try_acquire_lock(None, b"k", 1000)
        .await
        .expect_err("out of memory");
    assert_eq!(err.code(), Some(ErrorCode::ServerError), "{err}");
}

#[tokio::test]
async fn full_memcached_refuses_the_lock() {
    let server = Memcached::start_with(&["-M", "-m", "2"]);
    let mut raw = Raw::connect(server.port());
    let filler = "x".repeat(100_000);
    let mut i = 0;
    while raw.command(format!("set fill{i} 0 0 {}\r\n{filler}\r\n", filler.len()).as_bytes())
        == "STORED"
    {
        i += 1;
        assert!(i < 10_000, "memcached -M -m 2 never filled up");
    }
    let lock = open_lock(&server, &[]).await;
    // Small items may still fit in other slab classes; a refusal must be an error, never `true`.
    match lock.try_acquire(None, b"k", 1000).await {
        Ok(Some(lease)) => assert_eq!(
            raw.get(b"k").expect("stored").value,
            lease.owner_token.to_string().as_bytes()
        ),
        Ok(None) => panic!("nobody holds k"),
        Err(err) => assert_eq!(err.code(), Some(ErrorCode::ServerError), "{err}"),
    }
}
