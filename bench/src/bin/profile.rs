//! A fixed number of acquire + release cycles through one path, for instruction-count profiles:
//! `valgrind --tool=callgrind target/release/profile component 2000 127.0.0.1:11211`.
//! Paths: `native` (the guest core natively over tokio), `component` (through wasmtime) or `peer`
//! (the hand-written `async-memcached` cycle of `just bench`).

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
            eprintln!("usage: profile native|component|peer CYCLES HOST:PORT");
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
        "peer" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let mut client = async_memcached::Client::new(format!("tcp://{addr}"))
                    .await
                    .expect("connect");
                for _ in 0..n {
                    use async_memcached::MetaProtocol;
                    let stored = client
                        .meta_set(
                            "profiled-peer",
                            "0123456789abcdef0123456789abcdef",
                            false,
                            None,
                            Some(&["T11", "ME", "c"]),
                        )
                        .await
                        .expect("ms");
                    let cas = stored.and_then(|v| v.cas).expect("acquired with a CAS");
                    let c = format!("C{cas}");
                    client
                        .meta_delete("profiled-peer", false, None, Some(&[c.as_str()]))
                        .await
                        .expect("md");
                }
            });
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
