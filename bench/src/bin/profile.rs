//! A fixed number of acquire + release cycles through one path, for instruction-count profiles:
//! `valgrind --tool=callgrind target/release/profile component 2000 127.0.0.1:11211`.
//! Paths: `native` (the guest core natively over tokio), `component` (through wasmtime),
//! `blocking` (the component through `BlockingLock`) or `peer` (the hand-written `async-memcached`
//! cycle); the same code as `just bench`'s rows. `call` and `blocking-call` are the fixed cost of
//! crossing into the component: `is_open()`, an export that does no I/O. `instantiate` makes
//! CYCLES component instances (`BlockingLock::new`, no I/O) and prints the time per instance.

use memlock_bench::latency;
use memlock_host::Runtime;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (path, n, addr) = match &args[..] {
        [_, path, n, addr] => (
            path.as_str(),
            n.parse::<usize>().unwrap_or(1000),
            addr.as_str(),
        ),
        _ => {
            eprintln!(
                "usage: profile native|component|blocking|peer|call|blocking-call|instantiate CYCLES HOST:PORT"
            );
            std::process::exit(2);
        }
    };
    let mut times = Vec::with_capacity(n);
    if path == "native" {
        let mut lock = latency::open_native(addr);
        latency::native(&mut lock, n, &mut times);
        return;
    }
    if path == "instantiate" {
        let runtime = Runtime::shared().expect("component");
        let started = std::time::Instant::now();
        for _ in 0..n {
            drop(memlock_host::BlockingLock::new(runtime).expect("instantiate"));
        }
        println!(
            "{:.1} µs per instance",
            started.elapsed().as_secs_f64() * 1e6 / n as f64
        );
        return;
    }
    if path.starts_with("blocking") {
        let runtime = Runtime::shared().expect("component");
        let mut lock = latency::open_blocking(runtime, addr);
        if path == "blocking-call" {
            for _ in 0..n {
                assert!(lock.is_open().expect("is_open"));
            }
        } else {
            latency::blocking(&mut lock, n, &mut times);
        }
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        if path == "peer" {
            let mut client = latency::open_peer(addr).await;
            latency::peer(&mut client, n, &mut times).await;
        } else {
            let runtime = Runtime::shared().expect("component");
            let lock = latency::open_lock(runtime, addr, 1).await;
            if path == "call" {
                for _ in 0..n {
                    assert!(lock.is_open().await.expect("is_open"));
                }
            } else {
                latency::component(&lock, n, &mut times).await;
            }
        }
    });
}
