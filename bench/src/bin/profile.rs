//! A fixed number of acquire + release cycles through one path, for instruction-count profiles:
//! `valgrind --tool=callgrind target/release/profile component 2000 127.0.0.1:11211`.
//! Paths: `native` (the guest core natively over tokio) or `component` (through wasmtime).

#[path = "../native.rs"]
mod native;

use memlock_host::{Lock, Runtime};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (path, n, addr) = match &args[..] {
        [_, path, n, addr] => (
            path.as_str(),
            n.parse::<usize>().unwrap_or(1000),
            addr.as_str(),
        ),
        _ => {
            eprintln!("usage: profile native|component CYCLES HOST:PORT");
            std::process::exit(2);
        }
    };
    match path {
        "native" => {
            let mut lock = memlock_guest::MemcachedLock::new(native::NativeHost::new());
            lock.configure(&[("connection.uri", addr)])
                .expect("configure");
            lock.open(None).expect("open");
            for _ in 0..n {
                let lease = lock
                    .try_acquire(None, b"profiled", 10_000)
                    .expect("try")
                    .expect("acquired");
                lock.release(None, &lease).expect("release");
            }
        }
        _ => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let lock = Lock::new(Runtime::shared().expect("component"))
                    .await
                    .expect("instantiate");
                lock.configure(&[("connection.uri", addr)])
                    .await
                    .expect("configure");
                lock.open(None).await.expect("open");
                for _ in 0..n {
                    let lease = lock
                        .try_acquire(None, b"profiled", 10_000)
                        .await
                        .expect("try")
                        .expect("acquired");
                    lock.release(None, &lease).await.expect("release");
                }
            });
        }
    }
}
