//! Keys cannot inject commands: every byte string is one base64 token, and the limit is checked.

use memlock_host::ErrorCategory;
use memlock_host::ErrorCode;
use memlock_tests::raw::Raw;
use memlock_tests::{Memcached, open_lock};

#[tokio::test]
async fn hostile_keys_are_held_safely_and_touch_nothing_else() {
    let server = Memcached::start();
    let mut raw = Raw::connect(server.port());
    raw.set("sentinel", "keep-me");
    let lock = open_lock(&server, &[]).await;
    let max = vec![b'k'; 186];
    let hostile: [&[u8]; 8] = [
        b"lockq q",
        b"lockI T0",
        b"get x\r\nflush_all",
        b"k\r\nset forged 0 0 1\r\nx",
        b"tab\tctl\x01\x7fnul\0end",
        "ключ🔒".as_bytes(),
        b"\xff\xfe\x00",
        &max,
    ];
    for key in hostile {
        let lease = lock
            .try_acquire(None, key, 30_000)
            .await
            .expect("valid key")
            .expect("acquired");
        let item = raw.get(key).expect("stored under exactly the caller's key");
        assert_eq!(item.value, lease.owner_token.to_string().as_bytes());
        assert!(item.ttl > 0, "finite ttl for {key:?}");
        assert!(lock.release(None, &lease).await.expect("release"));
        assert!(raw.get(key).is_none());
    }
    assert_eq!(
        raw.get_plain("sentinel").as_deref(),
        Some("keep-me"),
        "nothing was flushed"
    );
    assert!(raw.get(b"forged").is_none(), "nothing was forged");
}

#[tokio::test]
async fn oversize_and_empty_keys_are_refused() {
    let server = Memcached::start();
    let lock = open_lock(&server, &[]).await;
    for key in [&[][..], &[b'k'; 187][..], &[0u8; 4096][..]] {
        let err = lock
            .try_acquire_lock(Some("k"), key, 1000)
            .await
            .expect_err("invalid key");
        assert_eq!(
            err.code(),
            Some(ErrorCode::InvalidKey),
            "{} bytes: {err}",
            key.len()
        );
        assert_eq!(err.category(), ErrorCategory::BadRequest);
    }
    let small = open_lock(&server, &[("options.max_key_size", "8")]).await;
    assert!(
        small
            .try_acquire_lock(None, b"six456", 1000)
            .await
            .expect("6 bytes fit in 8")
    );
    let err = small
        .try_acquire_lock(None, b"seven67", 1000)
        .await
        .expect_err("7 bytes do not");
    assert_eq!(err.code(), Some(ErrorCode::InvalidKey));
}
