//! Leases past the seed: owner-checked extend, and fencing tokens that keep increasing across
//! release, `flush_all` and a memcached restart.

use std::time::Duration;

use memlock_host::ErrorCode;
use memlock_tests::raw::Raw;
use memlock_tests::{Memcached, must_acquire, open_lock};

#[tokio::test]
async fn owner_extends_and_moves_valid_until() {
    let server = Memcached::start();
    let lock = open_lock(&server, &[]).await;
    let lease = must_acquire(&lock, b"job", 2_000).await;
    let extended = lock
        .extend(None, &lease, 60_000)
        .await
        .expect("owner extends");
    assert!(
        extended.remaining() > Duration::from_secs(50),
        "valid for {:?}",
        extended.remaining()
    );
    assert!(extended.valid_until > lease.valid_until);
    assert_ne!(
        extended.cas, lease.cas,
        "an extension is a compare-and-set: new CAS"
    );
    assert_eq!(
        extended.fencing_token, lease.fencing_token,
        "extensions keep the fencing token"
    );
    let item = Raw::connect(server.port()).get(b"job").expect("held");
    assert_eq!(item.value, lease.owner_token.to_string().as_bytes());
    assert!(item.ttl > 50, "server ttl moved to {}", item.ttl);
    assert!(lock.release(None, &extended).await.expect("release"));
}

#[tokio::test]
async fn another_instance_cannot_extend_a_lease_it_does_not_hold() {
    let server = Memcached::start();
    let a = open_lock(&server, &[]).await;
    let b = open_lock(&server, &[]).await;
    let stale = must_acquire(&b, b"job", 10_000).await;
    assert_eq!(
        Raw::connect(server.port()).delete(b"job"),
        "HD",
        "B's item vanishes"
    );
    let held = must_acquire(&a, b"job", 10_000).await;

    let err = b
        .extend(Some("x"), &stale, 60_000)
        .await
        .expect_err("B's lease is gone");
    assert_eq!(err.code(), Some(ErrorCode::LockLost), "{err}");
    let item = Raw::connect(server.port())
        .get(b"job")
        .expect("A still holds it");
    assert_eq!(item.value, held.owner_token.to_string().as_bytes());
    assert!(item.ttl <= 11, "A's ttl was not prolonged: {}", item.ttl);

    // A lease whose item expired is lost too, never silently renewed.
    let short = must_acquire(&a, b"short", 100).await;
    assert_eq!(Raw::connect(server.port()).delete(b"short"), "HD");
    assert_eq!(
        a.extend(None, &short, 1_000)
            .await
            .expect_err("expired")
            .code(),
        Some(ErrorCode::LockLost)
    );
}

#[tokio::test]
async fn extend_after_restart_is_lost_and_touches_the_new_holder_not() {
    let mut server = Memcached::start();
    let a = open_lock(&server, &[]).await;
    let b = open_lock(&server, &[]).await;
    let old = must_acquire(&a, b"lock:x", 30_000).await;
    server.restart();
    let new = must_acquire(&b, b"lock:x", 5_000).await;
    assert_eq!(new.cas, old.cas, "same CAS on the restarted server");
    let err = a
        .extend(None, &old, 60_000)
        .await
        .expect_err("A's server process is gone");
    assert_eq!(err.code(), Some(ErrorCode::LockLost));
    let item = Raw::connect(server.port())
        .get(b"lock:x")
        .expect("B's lock");
    assert_eq!(item.value, new.owner_token.to_string().as_bytes());
    assert!(item.ttl <= 6, "B's ttl untouched: {}", item.ttl);
}

#[tokio::test]
async fn fencing_tokens_increase_across_release_flush_and_restart() {
    let mut server = Memcached::start();
    let lock = open_lock(&server, &[]).await;
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let lease = must_acquire(&lock, b"fenced", 10_000).await;
        tokens.push(lease.fencing_token);
        assert!(lock.release(None, &lease).await.expect("release"));
    }
    let lease = must_acquire(&lock, b"fenced", 10_000).await;
    tokens.push(lease.fencing_token);
    assert_eq!(Raw::connect(server.port()).command(b"flush_all\r\n"), "OK");
    let after_flush = must_acquire(&lock, b"fenced", 10_000).await;
    tokens.push(after_flush.fencing_token);

    // A restart resets CAS counters; the token's server-start part moves on. memcached counts its
    // start in whole seconds: wait into the next second so the assumption holds.
    let before = after_flush.fencing_token.server_start();
    server.stop();
    wait_for_next_second(before).await;
    server.restart();
    let after_restart = must_acquire(&lock, b"fenced", 10_000).await;
    assert!(
        after_restart.cas <= after_flush.cas,
        "the CAS counter did restart"
    );
    tokens.push(after_restart.fencing_token);
    for pair in tokens.windows(2) {
        assert!(pair[0] < pair[1], "tokens must increase: {:?}", tokens);
    }
}

/// Blocks until a memcached started now would report a later start second than `server_start`
/// (memcached back-dates its start by 2 s).
async fn wait_for_next_second(server_start: u64) {
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        if now.saturating_sub(2) > server_start {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
