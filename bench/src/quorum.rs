//! The quorum rows: an acquire + release cycle in quorum mode over 3 and over 5 memcached
//! processes, beside the same cycle on one server (shard mode), interleaved in rounds. Quorum
//! mode counts a server only once its process has run `options.max_lease`, so the servers are
//! started first and the rows wait until every lock has a majority.

use std::time::Instant;

use memlock_host::{Lock, Runtime};
use memlock_tests::Memcached;

use crate::stats::{Summary, summarize};

pub struct QuorumRows {
    pub single: Summary,
    pub three: Summary,
    pub five: Summary,
}

/// Short: the cluster counts after it (plus memcached's 3 s of uptime running ahead).
const MAX_LEASE_MS: i64 = 1000;
const ROUNDS: usize = 20;

async fn lock(runtime: &'static Runtime, servers: &[Memcached]) -> Lock {
    let mut config: Vec<(String, String)> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("connections.{i}.uri"), s.uri()))
        .collect();
    if servers.len() > 1 {
        config.push(("options.mode".into(), "quorum".into()));
        config.push(("options.max_lease".into(), MAX_LEASE_MS.to_string()));
    }
    let lock = Lock::new(runtime).await.expect("instantiate");
    lock.configure(&config).await.expect("configure");
    lock.open(None).await.expect("open");
    lock
}

/// One acquire + release of a free `key`, both must succeed.
async fn cycle(lock: &Lock, key: &[u8]) {
    let lease = lock
        .try_acquire(None, key, MAX_LEASE_MS)
        .await
        .expect("try")
        .expect("acquired");
    assert!(lock.release(None, &lease).await.expect("release"));
}

/// Waits until `lock` has a majority of servers that count: a blocking acquire waits out
/// `NO_QUORUM` (at most 20 s).
async fn until_counted(lock: &Lock) {
    let lease = lock
        .acquire(None, b"quorum-warm", MAX_LEASE_MS, 20_000)
        .await
        .expect("quorum warm-up");
    lock.release(None, &lease).await.expect("release");
}

/// `n` cycles of each path.
pub async fn measure(runtime: &'static Runtime, n: usize) -> QuorumRows {
    let servers: Vec<Memcached> = (0..5).map(|_| Memcached::start()).collect();
    let single = lock(runtime, &servers[..1]).await;
    let three = lock(runtime, &servers[..3]).await;
    let five = lock(runtime, &servers).await;
    until_counted(&three).await;
    until_counted(&five).await;
    for _ in 0..200 {
        cycle(&single, b"q-single").await;
        cycle(&three, b"q-three").await;
        cycle(&five, b"q-five").await;
    }
    let mut samples = [Vec::new(), Vec::new(), Vec::new()];
    for round in 0..ROUNDS {
        for step in 0..3 {
            let path = (round + step) % 3;
            let (lock, key) = match path {
                0 => (&single, &b"q-single"[..]),
                1 => (&three, &b"q-three"[..]),
                _ => (&five, &b"q-five"[..]),
            };
            for _ in 0..n / ROUNDS {
                let t = Instant::now();
                cycle(lock, key).await;
                samples[path].push(t.elapsed());
            }
        }
    }
    let [single, three, five] = samples;
    QuorumRows {
        single: summarize(single),
        three: summarize(three),
        five: summarize(five),
    }
}
