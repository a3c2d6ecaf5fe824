//! One `Lock` shared by several callers: renewal never waits behind another caller's call, a
//! cancelled call leaves the `Lock` working and gives back what it acquired, and a guard refuses a
//! lease it cannot renew.

use std::sync::Arc;
use std::time::{Duration, Instant};

use memlock_host::ErrorCode;
use memlock_host::Lease;
use memlock_tests::raw::Raw;
use memlock_tests::{Memcached, must_acquire, open_lock};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_renews_while_another_caller_blocks_in_acquire_on_the_same_instance() {
    let server = Memcached::start();
    // One component instance: every key maps to it.
    let lock = Arc::new(open_lock(&server, &[]).await);
    let holder = open_lock(&server, &[]).await;
    let _busy = must_acquire(&holder, b"busy", 30_000).await;

    let lease = must_acquire(&lock, b"renewed", 600).await;
    let mut guard = lock
        .guard(lease, None)
        .expect("a lease from acquire can be guarded");

    let blocked = {
        let lock = Arc::clone(&lock);
        tokio::spawn(async move { lock.acquire(None, b"busy", 10_000, 5_000).await })
    };
    tokio::select! {
        outcome = blocked => {
            let err = outcome.expect("join").expect_err("busy is held all along");
            assert_eq!(err.code(), Some(ErrorCode::LockTimeout), "{err}");
        }
        lost = guard.lost() => panic!("the 600 ms lease was lost while renewable: {lost}"),
    }
    let item = Raw::connect(server.port())
        .get(b"renewed")
        .expect("still held after 5 s of a 600 ms lease");
    let current = guard.lease().expect("held");
    assert_eq!(item.value, current.owner_token.to_string().as_bytes());
    assert!(guard.release().await.expect("release"));
}

#[tokio::test]
async fn a_cancelled_call_leaves_the_lock_working() {
    let server = Memcached::start();
    let lock = open_lock(&server, &[]).await;
    let holder = open_lock(&server, &[]).await;
    let _busy = must_acquire(&holder, b"busy", 30_000).await;

    // A wait of a minute, given up after 150 ms.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(150),
        lock.acquire(None, b"busy", 10_000, 60_000),
    )
    .await;
    assert!(cancelled.is_err(), "the caller gave up first");
    // The next call works, on the same key's instance, without waiting out the abandoned minute:
    // the cancelled acquire stopped at its next pause.
    let next = tokio::time::timeout(
        Duration::from_secs(10),
        lock.try_acquire(None, b"free", 10_000),
    )
    .await
    .expect("the abandoned acquire stopped; it did not wait out its minute");
    let lease = next
        .expect("the Lock still works after a cancelled call")
        .expect("free is free");
    assert!(lock.release(None, &lease).await.expect("release"));
}

fn delete_hits(server: &Memcached) -> u64 {
    Raw::connect(server.port())
        .stats()
        .into_iter()
        .find(|(name, _)| name == "delete_hits")
        .and_then(|(_, value)| value.parse().ok())
        .expect("stats has delete_hits")
}

#[tokio::test]
async fn a_lease_a_cancelled_acquire_took_is_released_owner_checked() {
    let server = Memcached::start();
    let lock = open_lock(&server, &[]).await;
    // Open the connection first, so the acquire below goes straight to a stopped server.
    let warm = must_acquire(&lock, b"warm", 10_000).await;
    assert!(lock.release(None, &warm).await.expect("release"));
    for (key, seed_api) in [(&b"job"[..], false), (&b"seed"[..], true)] {
        let deletes_before = delete_hits(&server);
        server.pause();
        let attempt = async {
            if seed_api {
                lock.try_acquire_lock(None, key, 30_000).await.map(drop)
            } else {
                lock.try_acquire(None, key, 30_000).await.map(drop)
            }
        };
        let cancelled = tokio::time::timeout(Duration::from_millis(150), attempt).await;
        assert!(
            cancelled.is_err(),
            "the caller gave up while the server was stopped"
        );
        // The server wakes, stores the buffered add and answers it. The abandoned call takes that
        // answer and gives the key back: nobody is left holding a 30 s lock no caller knows about.
        server.resume();
        let deadline = Instant::now() + Duration::from_secs(5);
        while delete_hits(&server) == deletes_before {
            assert!(
                Instant::now() < deadline,
                "{}: the lease the cancelled call took was never released",
                String::from_utf8_lossy(key)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(Raw::connect(server.port()).get(key).is_none());
        let again = must_acquire(&lock, key, 1_000).await;
        assert!(
            lock.release(None, &again)
                .await
                .expect("the Lock still works")
        );
    }
}

#[tokio::test]
async fn a_guard_refuses_a_lease_parsed_from_a_handle() {
    let server = Memcached::start();
    let lock = Arc::new(open_lock(&server, &[]).await);
    let lease = must_acquire(&lock, b"job", 10_000).await;
    let parsed = Lease::from_handle(&lease.handle()).expect("parse");
    let err = lock
        .guard(parsed.clone(), None)
        .err()
        .expect("no valid-until, no ttl: nothing to renew by");
    assert_eq!(err.code(), Some(ErrorCode::InvalidLease), "{err}");
    // What the error says to do works: extend, then guard the extended lease.
    let extended = lock.extend(None, &parsed, 10_000).await.expect("extend");
    let guard = lock.guard(extended, None).expect("guard");
    assert!(guard.release().await.expect("release"));
}
