//! A ttl is never infinite: sub-second ttls expire, and invalid ttls are refused.

use std::time::{Duration, Instant};

use memlock_host::ErrorCategory;
use memlock_host::ErrorCode;
use memlock_tests::raw::Raw;
use memlock_tests::{Memcached, must_acquire, open_lock};

/// Polls `condition` until it holds; fails after `limit`. Waits on a condition, not a fixed sleep.
async fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "condition not reached within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sub_second_ttl_expires_and_never_becomes_permanent() {
    let server = Memcached::start();
    let a = open_lock(&server, &[]).await;
    let b = open_lock(&server, &[]).await;
    let lease = must_acquire(&a, b"short", 300).await;
    assert!(lease.remaining() <= Duration::from_millis(300));

    // On the server: a finite ttl of ceil(0.3)+1 = 2 s, never -1 (permanent).
    let item = Raw::connect(server.port()).get(b"short").expect("stored");
    assert_eq!(item.value, lease.owner_token.to_string().as_bytes());
    assert!(
        (1..=2).contains(&item.ttl),
        "ttl on the server: {}",
        item.ttl
    );

    assert!(
        !b.try_acquire_lock(None, b"short", 300)
            .await
            .expect("busy while held")
    );
    let mut raw = Raw::connect(server.port());
    wait_until(Duration::from_secs(5), || raw.get(b"short").is_none()).await;
    assert!(
        b.try_acquire_lock(None, b"short", 300)
            .await
            .expect("acquired after expiry")
    );
}

#[tokio::test]
async fn invalid_ttls_are_bad_requests() {
    let server = Memcached::start();
    let lock = open_lock(&server, &[("options.max_expiration", "60")]).await;
    for ttl in [0, -1, i64::MIN, 59_001, i64::MAX] {
        let err = lock
            .try_acquire_lock(Some("t"), b"k", ttl)
            .await
            .expect_err("invalid ttl");
        assert_eq!(err.code(), Some(ErrorCode::InvalidTtl), "ttl {ttl}: {err}");
        assert_eq!(err.category(), ErrorCategory::BadRequest);
    }
    assert!(
        lock.try_acquire_lock(None, b"k", 59_000)
            .await
            .expect("largest valid ttl")
    );
    assert_eq!(
        Raw::connect(server.port()).get(b"k").expect("stored").ttl,
        60
    );
    let err = lock
        .acquire_lock(None, b"k2", 1000, -5)
        .await
        .expect_err("negative timeout");
    assert_eq!(err.code(), Some(ErrorCode::InvalidTtl));
}
