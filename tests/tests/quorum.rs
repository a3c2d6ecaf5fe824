//! Quorum mode against real memcached processes: three (and five) servers, one killed, one
//! stopped with SIGSTOP, restarted ones not counted until `options.max_lease` has passed.

use std::time::{Duration, Instant};

use memlock_host::{ErrorCode, Lease, Lock};
use memlock_tests::{Memcached, runtime};

/// Short enough for tests, long enough to hold a lease across a few round trips.
const MAX_LEASE_MS: &str = "1500";

fn servers(n: usize) -> Vec<Memcached> {
    (0..n).map(|_| Memcached::start()).collect()
}

async fn quorum_lock(servers: &[Memcached], extra: &[(&str, &str)]) -> Lock {
    let mut config: Vec<(String, String)> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("connections.{i}.uri"), s.uri()))
        .collect();
    for (k, v) in [
        ("options.mode", "quorum"),
        ("options.max_lease", MAX_LEASE_MS),
        ("options.timeout", "1000"),
        ("options.reconnect", "1000"),
        ("options.retries", "0"),
        ("options.retry", "0"),
    ]
    .iter()
    .chain(extra)
    {
        config.push((k.to_string(), v.to_string()));
    }
    let lock = Lock::new(runtime()).await.expect("instantiate");
    lock.configure(&config).await.expect("configure");
    lock.open(None).await.expect("open");
    lock
}

/// Waits until `lock` can take `key`: a majority of the servers have run `max_lease`, and
/// whatever held the key has expired. A blocking acquire waits out both (busy and `NO_QUORUM`);
/// it fails after 15 s instead of hanging.
async fn acquire_when_counted(lock: &Lock, key: &[u8], ttl_ms: i64) -> Lease {
    lock.acquire(None, key, ttl_ms, 15_000)
        .await
        .unwrap_or_else(|e| panic!("acquiring {}: {e}", String::from_utf8_lossy(key)))
}

#[tokio::test]
async fn quorum_needs_three_servers_and_bounds_the_ttl() {
    let two = servers(2);
    let lock = Lock::new(runtime()).await.expect("instantiate");
    let err = lock
        .configure(&[
            ("connections.0.uri", two[0].uri()),
            ("connections.1.uri", two[1].uri()),
            ("options.mode", "quorum".into()),
        ])
        .await
        .expect_err("two servers");
    assert_eq!(err.code(), Some(ErrorCode::InvalidConfig), "{err}");
    assert!(err.to_string().contains("at least 3"), "{err}");
    let three = servers(3);
    let lock = quorum_lock(&three, &[]).await;
    let err = lock
        .try_acquire(None, b"k", 5000)
        .await
        .expect_err("ttl above max_lease");
    assert_eq!(err.code(), Some(ErrorCode::InvalidTtl), "{err}");
}

#[tokio::test]
async fn a_cold_cluster_grants_nothing_until_max_lease_then_locks() {
    let three = servers(3);
    let a = quorum_lock(&three, &[]).await;
    // Just started: every process is younger than max_lease (and memcached's uptime runs ahead).
    let err = a.try_acquire(None, b"cold", 1000).await.expect_err("cold");
    assert_eq!(err.code(), Some(ErrorCode::NoQuorum), "{err}");
    assert!(
        err.to_string().contains("started") && err.to_string().contains("max_lease"),
        "{err}"
    );
    // Each client judges a process's age from its own handshake, conservatively (memcached's
    // uptime runs up to 3 s ahead), so a second client waits for the servers to count too.
    let b = quorum_lock(&three, &[]).await;
    // A blocking acquire waits a cold cluster out, as it waits for a busy key.
    let warm = a
        .acquire(None, b"warm", 1000, 15_000)
        .await
        .expect("acquire waits");
    a.release(None, &warm).await.expect("release");
    let warm = acquire_when_counted(&b, b"warm", 1000).await;
    b.release(None, &warm).await.expect("release");
    let lease = a
        .try_acquire(None, b"cold", 1500)
        .await
        .expect("try")
        .expect("free");
    assert_eq!(lease.fencing_token.0, 0, "no fencing tokens in quorum mode");
    assert!(
        b.try_acquire(None, b"cold", 1000)
            .await
            .expect("try")
            .is_none()
    );
    assert!(a.release(None, &lease).await.expect("release"));
    let again = b.try_acquire(None, b"cold", 1000).await.expect("try");
    assert!(again.is_some(), "free after the release");
    // A handle releases from anywhere, as in shard mode.
    let handle = again.expect("lease").handle();
    let parsed = Lease::from_handle(&handle).expect("handle");
    assert!(a.release(None, &parsed).await.expect("release by handle"));
}

#[tokio::test]
async fn one_server_killed_or_stopped_leaves_the_majority() {
    let mut five = servers(5);
    let a = quorum_lock(&five, &[]).await;
    let b = quorum_lock(&five, &[]).await;
    for lock in [&a, &b] {
        let lease = acquire_when_counted(lock, b"k", 1000).await;
        lock.release(None, &lease).await.expect("release");
    }
    five[0].stop();
    five[1].pause();
    let started = Instant::now();
    let lease = b
        .try_acquire(None, b"k", 1500)
        .await
        .expect("try")
        .expect("3 of 5");
    // Requests go to every server before any reply is read: the stopped server costs one
    // options.timeout (1 s), the rest answer meanwhile. The bound only rules out a hang.
    assert!(
        started.elapsed() < Duration::from_millis(3000),
        "took {:?}",
        started.elapsed()
    );
    // The lease's ttl is 1.5 s: from here on the stopped server would cost each call a timeout
    // and the lease its time, so it runs again; the killed one stays down.
    five[1].resume();
    let extended = b
        .extend(None, &lease, 1500)
        .await
        .expect("extend with 4 of 5");
    assert!(
        a.try_acquire(None, b"k", 1000)
            .await
            .expect("try")
            .is_none()
    );
    assert!(b.release(None, &extended).await.expect("release"));
    assert!(
        a.try_acquire(None, b"k", 1000)
            .await
            .expect("try")
            .is_some()
    );
}

#[tokio::test]
async fn restarted_servers_do_not_count_until_max_lease() {
    let mut three = servers(3);
    let a = quorum_lock(&three, &[]).await;
    let b = quorum_lock(&three, &[]).await;
    let lease = acquire_when_counted(&a, b"held", 1500).await;
    // Two of three restart while the lock is held: they come back empty. Counted at once, they
    // would give the second client a majority while the first still holds the lock.
    three[1].restart();
    three[2].restart();
    let taken = b.try_acquire(None, b"held", 1500).await;
    assert!(
        matches!(taken, Ok(None)),
        "the first server still holds it: busy, not {taken:?}"
    );
    assert!(
        a.extend(None, &lease, 1500).await.is_err(),
        "the first lease has lost its majority: the restarted servers do not count"
    );
    // Once the restarted processes have run max_lease, the first lease has long expired and
    // the second client gets the lock.
    acquire_when_counted(&b, b"held", 1500).await;
}

#[tokio::test]
async fn a_minority_never_holds_and_its_store_is_taken_back() {
    let mut three = servers(3);
    let a = quorum_lock(&three, &[]).await;
    let warm = acquire_when_counted(&a, b"warm", 1000).await;
    a.release(None, &warm).await.expect("release");
    three[1].stop();
    three[2].stop();
    let err = a
        .try_acquire(None, b"minority", 1500)
        .await
        .expect_err("one of three");
    assert_eq!(err.code(), Some(ErrorCode::NoQuorum), "{err}");
    // The one server that stored the token had it deleted again.
    let mut raw = memlock_tests::raw::Raw::connect(three[0].port());
    assert!(
        raw.get(b"minority").is_none(),
        "the minority's store was rolled back"
    );
}

#[tokio::test]
async fn a_failed_acquire_takes_back_only_its_own_stores() {
    let mut three = servers(3);
    let a = quorum_lock(&three, &[]).await;
    let b = quorum_lock(&three, &[]).await;
    for lock in [&a, &b] {
        let warm = acquire_when_counted(lock, b"warm", 1000).await;
        lock.release(None, &warm).await.expect("release");
    }
    // A holds the key on servers 0 and 1; server 2 was down when it acquired.
    three[2].stop();
    let lease = a
        .try_acquire(None, b"mine", 1500)
        .await
        .expect("try")
        .expect("2 of 3");
    three[2].restart();
    // B stores on server 2 only (busy on 0 and 1) and must take back that store alone.
    assert!(
        b.try_acquire(None, b"mine", 1500)
            .await
            .expect("try")
            .is_none()
    );
    for server in &three[..2] {
        let mut raw = memlock_tests::raw::Raw::connect(server.port());
        let item = raw.get(b"mine").expect("A's item is still there");
        assert_eq!(item.value, lease.owner_token.to_string().into_bytes());
    }
    let mut raw = memlock_tests::raw::Raw::connect(three[2].port());
    assert!(
        raw.get(b"mine").is_none(),
        "B's store on server 2 was rolled back"
    );
    assert!(a.release(None, &lease).await.expect("release"));
}

/// The seed API in quorum mode: `try_acquire_lock`, `acquire_lock` (waiting out a busy key) and
/// `release_lock`, across three servers.
#[tokio::test]
async fn the_seed_api_in_quorum_mode() {
    let three = servers(3);
    let a = quorum_lock(&three, &[]).await;
    let b = quorum_lock(&three, &[]).await;
    for lock in [&a, &b] {
        let warm = acquire_when_counted(lock, b"warm", 1000).await;
        lock.release(None, &warm).await.expect("release");
    }
    assert!(a.try_acquire_lock(None, b"seed", 1500).await.expect("try"));
    assert!(!b.try_acquire_lock(None, b"seed", 1500).await.expect("busy"));
    let err = b
        .acquire_lock(None, b"seed", 1500, 300)
        .await
        .expect_err("held for longer than the wait");
    assert_eq!(err.code(), Some(ErrorCode::LockTimeout), "{err}");
    a.release_lock(None, b"seed").await.expect("release");
    b.acquire_lock(None, b"seed", 1500, 2000)
        .await
        .expect("free after the release");
    assert!(
        !a.try_acquire_lock(None, b"seed", 1500)
            .await
            .expect("busy again")
    );
    b.release_lock(None, b"seed").await.expect("release");
}
