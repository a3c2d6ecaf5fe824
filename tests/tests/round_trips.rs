//! One round trip per lock operation: counted on the server, not timed. After the connection is
//! open (its one-time handshake: `stats` and the incarnation lookup), an acquire is exactly one
//! `ms` and a release exactly one `md`, with no reads, no touches and no new connections.

use memlock_tests::raw::Raw;
use memlock_tests::{Memcached, must_acquire, open_lock};

/// The server's command counters.
fn counters(raw: &mut Raw) -> [u64; 6] {
    let names = [
        "cmd_set",
        "cmd_get",
        "delete_hits",
        "delete_misses",
        "cmd_touch",
        "total_connections",
    ];
    let stats = raw.stats();
    names.map(|n| {
        stats
            .iter()
            .find(|(k, _)| k == n)
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(u64::MAX)
    })
}

#[tokio::test]
async fn acquire_and_release_are_one_command_each() {
    let server = Memcached::start();
    let mut raw = Raw::connect(server.port());
    let lock = open_lock(&server, &[]).await;
    let warm = must_acquire(&lock, b"warm", 10_000).await;
    assert!(lock.release(None, &warm).await.expect("release"));

    for _ in 0..10 {
        let before = counters(&mut raw);
        let lease = must_acquire(&lock, b"counted", 10_000).await;
        let after_acquire = counters(&mut raw);
        assert!(lock.release(None, &lease).await.expect("release"));
        let after_release = counters(&mut raw);
        let delta = |a: [u64; 6], b: [u64; 6]| -> Vec<u64> {
            a.iter().zip(b).map(|(x, y)| y - x).collect()
        };
        assert_eq!(
            delta(before, after_acquire),
            [1, 0, 0, 0, 0, 0],
            "acquire: one ms, nothing else"
        );
        assert_eq!(
            delta(after_acquire, after_release),
            [0, 0, 1, 0, 0, 0],
            "release: one md, nothing else"
        );
    }
}
