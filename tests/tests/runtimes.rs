//! A `Lock` belongs to the tokio runtime that opened its connections (README: "Use a `Lock` from
//! one tokio runtime"). Used from a second runtime anyway, a call still ends — with `TIMEOUT`
//! after `options.timeout` while the first runtime is alive but idle, at once after it is
//! dropped — and the lock then works normally, with nothing left held on the server.

use std::time::{Duration, Instant};

use memlock_host::ErrorCode;
use memlock_tests::raw::Raw;
use memlock_tests::{Memcached, must_acquire, open_lock};
use tokio::runtime::Runtime;

/// A generous bound for "did not hang": the configured timeout plus scheduling slack.
const SLACK: Duration = Duration::from_secs(2);

fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Opens a lock in `first` and does one acquire + release there, so a connection is pooled.
fn lock_used_in(first: &Runtime, server: &Memcached) -> memlock_host::Lock {
    first.block_on(async {
        let lock = open_lock(server, &[("options.timeout", "300")]).await;
        let lease = must_acquire(&lock, b"first", 10_000).await;
        assert!(lock.release(None, &lease).await.expect("release"));
        lock
    })
}

/// Acquires and releases `second` in `rt`, and checks the server holds nothing afterwards.
fn acquire_and_release_in(rt: &Runtime, lock: &memlock_host::Lock, server: &Memcached) {
    let lease = rt.block_on(must_acquire(lock, b"second", 10_000));
    assert!(rt.block_on(lock.release(None, &lease)).expect("release"));
    assert_eq!(Raw::connect(server.port()).get(b"second"), None);
}

#[test]
fn from_a_second_runtime_the_first_call_times_out_then_the_lock_works() {
    let server = Memcached::start();
    let first = current_thread();
    let lock = lock_used_in(&first, &server);
    // `first` stays alive, and nothing runs it: its connection never sees a reply.
    let second = current_thread();
    let started = Instant::now();
    let err = second
        .block_on(lock.try_acquire(None, b"second", 10_000))
        .expect_err("the pooled connection belongs to the idle runtime");
    assert_eq!(err.code(), Some(ErrorCode::Timeout), "{err}");
    assert!(started.elapsed() < Duration::from_millis(300) + SLACK);
    // The connection was replaced, and the acquire that may have been stored is cleaned up
    // (owner-checked) before the next command: the key is free again.
    acquire_and_release_in(&second, &lock, &server);
    drop(first);
}

#[test]
fn after_the_first_runtime_is_dropped_the_lock_reconnects_at_once() {
    let server = Memcached::start();
    let first = current_thread();
    let lock = lock_used_in(&first, &server);
    drop(first);
    let second = current_thread();
    // The first call succeeds: a wait for the dead runtime's connection would have been a
    // `TIMEOUT` error.
    acquire_and_release_in(&second, &lock, &server);
}
