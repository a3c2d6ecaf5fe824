//! The TLS rows: the component's acquire+release cycle over TLS beside the same cycle in
//! plaintext, and the first operation on a new connection (connect, TLS handshake, one round
//! trip) both ways. One memcached process serves both: TLS (`-Z`, certificates made for the
//! run) on one port and plaintext (`-l notls:…`) on another, so both paths meet the same process
//! and thread. (With two processes the plaintext one was measured at 18 µs a cycle against
//! 120 µs: on two cores the scheduler placed each process differently, and whether client and
//! server share a core decides a round trip's cost.) The paths are measured interleaved in
//! rounds, as the latency rows are, so drift falls on both alike.

use std::time::Instant;

use memlock_host::{Lock, Runtime};
use memlock_tests::Memcached;
use memlock_tests::pki::TestPki;

use crate::latency::cycle;
use crate::stats::{Summary, summarize};

pub struct TlsRows {
    pub plain_cycle: Summary,
    pub tls_cycle: Summary,
    pub plain_first: Summary,
    pub tls_first: Summary,
}

const ROUNDS: usize = 20;

struct Servers {
    _pki: TestPki,
    server: Memcached,
    plain_port: u16,
    ca: String,
}

impl Servers {
    fn start() -> Servers {
        let pki = TestPki::temporary().expect("generate certificates");
        let plain_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut args = pki.memcached_args(false);
        args.extend(["-l".to_owned(), format!("notls:127.0.0.1:{plain_port}")]);
        let server = Memcached::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let ca = pki.ca.display().to_string();
        Servers {
            _pki: pki,
            server,
            plain_port,
            ca,
        }
    }

    fn config(&self, tls: bool) -> Vec<(String, String)> {
        let port = if tls {
            self.server.port()
        } else {
            self.plain_port
        };
        let mut config = vec![
            ("connection.host".to_owned(), "127.0.0.1".to_owned()),
            ("connection.port".to_owned(), port.to_string()),
        ];
        if tls {
            config.push(("connection.protocol".into(), "memcacheds".into()));
            config.push(("credential.ssl_ca_file".into(), self.ca.clone()));
        }
        config
    }

    async fn lock(&self, runtime: &'static Runtime, tls: bool) -> Lock {
        let lock = Lock::new(runtime).await.expect("instantiate");
        lock.configure(&self.config(tls)).await.expect("configure");
        lock.open(None).await.expect("open");
        lock
    }
}

/// `n` cycles of each on open connections, and `first` new connections of each.
pub async fn measure(runtime: &'static Runtime, n: usize, first: usize) -> TlsRows {
    let servers = Servers::start();
    let plain = servers.lock(runtime, false).await;
    let tls = servers.lock(runtime, true).await;
    for _ in 0..300 {
        cycle(&plain, b"plain-bench").await;
        cycle(&tls, b"tls-bench").await;
    }
    let (mut plain_cycle, mut tls_cycle) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut plain_first, mut tls_first) = (Vec::with_capacity(first), Vec::with_capacity(first));
    for round in 0..ROUNDS {
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for use_tls in order {
            let (lock, out, key) = if use_tls {
                (&tls, &mut tls_cycle, &b"tls-bench"[..])
            } else {
                (&plain, &mut plain_cycle, &b"plain-bench"[..])
            };
            for _ in 0..n / ROUNDS {
                let t = Instant::now();
                cycle(lock, key).await;
                out.push(t.elapsed());
            }
            // A new lock instance's first acquire opens its connection: connect, the TLS
            // handshake, then the handshake's and the acquire's round trips.
            let out = if use_tls {
                &mut tls_first
            } else {
                &mut plain_first
            };
            for i in 0..first / ROUNDS {
                let fresh = servers.lock(runtime, use_tls).await;
                let key = format!("first-{use_tls}-{round}-{i}");
                let t = Instant::now();
                let taken = fresh
                    .try_acquire_lock(None, key.as_bytes(), 10_000)
                    .await
                    .expect("first acquire");
                out.push(t.elapsed());
                assert!(taken);
                fresh.close(None).await.expect("close");
            }
        }
    }
    TlsRows {
        plain_cycle: summarize(plain_cycle),
        tls_cycle: summarize(tls_cycle),
        plain_first: summarize(plain_first),
        tls_first: summarize(tls_first),
    }
}
