//! Release is owner-checked: no instance can delete or overwrite another's lease, including after
//! a memcached restart resets the CAS counter.

use memlock_host::ErrorCode;
use memlock_tests::raw::Raw;
use memlock_tests::{Memcached, must_acquire, open_lock};

#[tokio::test]
async fn another_instance_cannot_release_or_overwrite() {
    let server = Memcached::start();
    let a = open_lock(&server, &[]).await;
    let b = open_lock(&server, &[]).await;
    let lease = must_acquire(&a, b"job", 10_000).await;

    assert!(
        b.try_acquire(None, b"job", 10_000)
            .await
            .expect("try")
            .is_none(),
        "B cannot overwrite"
    );
    b.release_lock(None, b"job")
        .await
        .expect("B holds nothing: a no-op");
    let item = Raw::connect(server.port()).get(b"job").expect("still held");
    assert_eq!(
        item.value,
        lease.owner_token.to_string().as_bytes(),
        "A's lease untouched"
    );

    assert!(a.release(None, &lease).await.expect("owner releases"));
    assert!(
        !a.release(None, &lease)
            .await
            .expect("second release is a no-op")
    );
}

#[tokio::test]
async fn stale_holder_cannot_release_the_next_holder() {
    let server = Memcached::start();
    let a = open_lock(&server, &[]).await;
    let b = open_lock(&server, &[]).await;
    let stale = must_acquire(&a, b"job", 10_000).await;
    // A's item vanishes (evicted, expired, or deleted by an operator); B takes the lock.
    assert_eq!(Raw::connect(server.port()).delete(b"job"), "HD");
    let fresh = must_acquire(&b, b"job", 10_000).await;

    assert!(
        !a.release(None, &stale).await.expect("stale release"),
        "stale release deletes nothing"
    );
    a.release_lock(None, b"job")
        .await
        .expect("stale seed-API release");
    let item = Raw::connect(server.port())
        .get(b"job")
        .expect("B still holds it");
    assert_eq!(item.value, fresh.owner_token.to_string().as_bytes());
}

#[tokio::test]
async fn lease_released_by_another_process_through_its_handle() {
    let server = Memcached::start();
    let a = open_lock(&server, &[]).await;
    let b = open_lock(&server, &[]).await;
    let lease = must_acquire(&a, b"handoff", 10_000).await;
    let handed = memlock_host::Lease::from_handle(&lease.handle()).expect("handle parses");
    assert!(b.release(None, &handed).await.expect("release by handle"));
    assert!(Raw::connect(server.port()).get(b"handoff").is_none());
}

#[tokio::test]
async fn release_after_restart_leaves_the_new_holder_in_place() {
    let mut server = Memcached::start();
    let a = open_lock(&server, &[]).await;
    let b = open_lock(&server, &[]).await;
    let old = must_acquire(&a, b"lock:x", 30_000).await;

    server.restart();
    let new = must_acquire(&b, b"lock:x", 30_000).await;
    // The hazard is real: the restarted server hands out the same CAS again.
    assert_eq!(new.cas, old.cas, "CAS counters restart with the server");
    assert_ne!(new.server_process, old.server_process);

    assert!(
        !a.release(None, &old).await.expect("A's release"),
        "A's item died with the old server"
    );
    a.release_lock(None, b"lock:x")
        .await
        .expect("seed-API release");
    let item = Raw::connect(server.port())
        .get(b"lock:x")
        .expect("B's lock is still there");
    assert_eq!(item.value, new.owner_token.to_string().as_bytes());
}

/// memcached as pid 1 (a container) restarted within the same second: `stats` reports the same
/// pid and start time, and the new process hands out the same CAS values again. A stale lease
/// from before the restart must still touch nothing of the new holder's.
#[tokio::test]
async fn a_restart_keeping_pid_and_start_second_leaves_the_new_holder_alone() {
    for _attempt in 0..10 {
        let mut server = Memcached::start_as_pid_1();
        let stale = open_lock(&server, &[]).await;
        let lease = must_acquire(&stale, b"job", 30_000).await;
        let before = server.stats_identity();
        server.restart();
        if server.stats_identity() != before {
            // The restart crossed a second boundary: the hazard needs the same second.
            continue;
        }
        assert_eq!(before.0, 1, "memcached runs as pid 1");
        let holder = open_lock(&server, &[]).await;
        let theirs = must_acquire(&holder, b"job", 30_000).await;
        assert_eq!(
            theirs.cas, lease.cas,
            "the new process reuses the stale lease's CAS"
        );

        assert!(
            !stale.release(None, &lease).await.expect("release"),
            "the stale release deletes nothing"
        );
        let err = stale
            .extend(None, &lease, 60_000)
            .await
            .expect_err("the stale lease cannot be extended");
        assert_eq!(err.code(), Some(ErrorCode::LockLost), "{err}");
        let item = Raw::connect(server.port())
            .get(b"job")
            .expect("the new holder still holds it");
        assert_eq!(item.value, theirs.owner_token.to_string().as_bytes());
        assert_eq!(item.cas, theirs.cas, "not extended by the stale holder");
        assert!(holder.release(None, &theirs).await.expect("release"));
        return;
    }
    panic!("memcached never restarted within the second it started in (10 attempts)");
}
