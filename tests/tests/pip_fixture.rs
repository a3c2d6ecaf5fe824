//! The pip-services `LockFixture`, unchanged in substance, against a real memcached.

use memlock_host::ErrorCategory;
use memlock_host::ErrorCode;
use memlock_tests::{Memcached, open_lock};

#[tokio::test]
async fn try_acquire_lock() {
    let server = Memcached::start();
    let lock = open_lock(&server, &[]).await;
    assert!(
        lock.try_acquire_lock(None, b"LOCK1", 3000)
            .await
            .expect("first try")
    );
    assert!(
        !lock
            .try_acquire_lock(None, b"LOCK1", 1000)
            .await
            .expect("second try")
    );
    lock.release_lock(None, b"LOCK1").await.expect("release");
    assert!(
        lock.try_acquire_lock(None, b"LOCK1", 1000)
            .await
            .expect("try after release")
    );
    lock.release_lock(None, b"LOCK1").await.expect("release");
}

#[tokio::test]
async fn acquire_lock() {
    let server = Memcached::start();
    let lock = open_lock(&server, &[]).await;
    lock.acquire_lock(Some("c1"), b"LOCK2", 3000, 1000)
        .await
        .expect("first acquire");

    let err = lock
        .acquire_lock(Some("c2"), b"LOCK2", 3000, 1000)
        .await
        .expect_err("held");
    let memlock_host::Error::Lock(err) = err else {
        panic!("expected a lock error, got {err}")
    };
    assert_eq!(err.category, ErrorCategory::Conflict);
    assert_eq!(err.code, ErrorCode::LockTimeout);
    assert_eq!(err.code.as_str(), "LOCK_TIMEOUT", "pip-services spelling");
    assert_eq!(err.message, "Acquiring lock LOCK2 failed on timeout");
    assert_eq!(err.correlation_id.as_deref(), Some("c2"));

    lock.release_lock(None, b"LOCK2").await.expect("release");
    lock.acquire_lock(None, b"LOCK2", 1000, 1000)
        .await
        .expect("acquire after release");
    lock.release_lock(None, b"LOCK2").await.expect("release");
}

#[tokio::test]
async fn release_lock() {
    let server = Memcached::start();
    let lock = open_lock(&server, &[]).await;
    assert!(
        lock.try_acquire_lock(None, b"LOCK3", 3000)
            .await
            .expect("try")
    );
    lock.release_lock(None, b"LOCK3").await.expect("release");
    lock.release_lock(None, b"LOCK3")
        .await
        .expect("release twice is not an error");
    assert!(
        lock.try_acquire_lock(None, b"LOCK3", 1000)
            .await
            .expect("try again")
    );
    lock.release_lock(None, b"LOCK3").await.expect("release");
}

#[tokio::test]
async fn open_close_lifecycle() {
    let server = Memcached::start();
    let lock = open_lock(&server, &[]).await;
    assert!(lock.is_open().await.expect("is_open"));
    lock.open(None).await.expect("open twice is a no-op");
    lock.close(None).await.expect("close");
    assert!(!lock.is_open().await.expect("is_open"));
    let err = lock
        .try_acquire_lock(Some("c9"), b"k", 1000)
        .await
        .expect_err("closed");
    assert_eq!(err.code(), Some(ErrorCode::NotOpened));
    assert_eq!(err.category(), ErrorCategory::InvalidState);
    lock.open(None).await.expect("reopen");
    assert!(
        lock.try_acquire_lock(None, b"k", 1000)
            .await
            .expect("works after reopen")
    );
}
