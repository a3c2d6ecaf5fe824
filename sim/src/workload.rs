//! What each simulated client does: the real component, through the host's `Lock`, acquiring
//! and releasing a few contended keys with random ttls, holds and timeouts; some leases are never
//! released (the client "crashes" and moves on). Once every client has finished its rounds and
//! every fault is over, each client makes one final blocking acquire: the liveness probe. (Waiting
//! for the others' rounds keeps contention that is still in progress out of the bound.)

use std::sync::Arc;
use std::time::Duration;

use memlock_host::{
    Environment, ErrorCode, Lease, Lock, MemoryCredentialStore, MemoryDiscovery, Runtime,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::history::{self, Event, History, Op, Outcome};
use crate::net::TurmoilNetwork;
use crate::resource::GuardedResource;
use crate::schedule::Mode;

/// The user and password every fake server requires and every client sends.
pub const CREDENTIALS: (&str, &str) = ("sim", "sim-secret");
pub const KEYS: [&str; 2] = ["k0", "k1"];
/// Whole seconds among them: memcached's one-second tick makes those the ttls where an item's
/// life and the holder's validity are closest.
pub const TTLS_MS: [i64; 6] = [300, 800, 1_000, 1_500, 2_000, 2_500];
/// Quorum mode adds `max_lease` itself: the ttl where the restart rule has no room to spare.
pub const QUORUM_TTLS_MS: [i64; 7] = [300, 800, 1_000, 1_500, 2_000, 2_500, MAX_LEASE_MS as i64];

/// The ttls a client in `mode` draws from.
pub fn ttls(mode: Mode) -> &'static [i64] {
    match mode {
        Mode::Shard => &TTLS_MS,
        Mode::Quorum => &QUORUM_TTLS_MS,
    }
}
pub const ROUNDS: usize = 6;

/// The lock's options in the simulation: short timeouts so faults resolve quickly.
pub const OPTIONS: [(&str, &str); 6] = [
    ("options.timeout", "400"),
    ("options.reconnect", "400"),
    ("options.retries", "1"),
    ("options.failures", "3"),
    ("options.retry", "1000"),
    ("options.retry_timeout", "100"),
];
/// Quorum mode's `options.max_lease`: at least the longest ttl; short, so that a restarted
/// server counts again within a run.
pub const MAX_LEASE_MS: u64 = 3_000;
pub const OP_TIMEOUT: Duration = Duration::from_millis(400);
pub const RECONNECT: Duration = Duration::from_millis(400);

pub struct ClientPlan {
    pub index: usize,
    pub seed: u64,
    pub servers: usize,
    pub mode: Mode,
    pub clock_rate: f64,
    /// (start, duration) of pauses, in simulated time.
    pub pauses: Vec<(Duration, Duration)>,
    pub faults_end: Duration,
    pub liveness_timeout: Duration,
    /// Clients still in their rounds (shared by every client of the run).
    pub rounds_left: std::rc::Rc<std::cell::Cell<usize>>,
}

/// Sleeps through any scheduled pause that has begun: a GC pause stops the client wherever it is
/// between calls (a call in progress finishes first; its effects are what a paused holder sees).
async fn honour_pauses(plan: &ClientPlan) {
    let now = history::now();
    for &(start, duration) in &plan.pauses {
        if start <= now && now < start + duration {
            tokio::time::sleep(start + duration - now).await;
        }
    }
}

fn record(
    history: &History,
    client: usize,
    op: Op,
    key: &str,
    ttl_ms: i64,
    started: Duration,
    outcome: Outcome,
) {
    history.record(Event::Call {
        client,
        op,
        key: key.to_string(),
        ttl_ms,
        started,
        ended: history::now(),
        outcome,
    });
}

/// The outcome of a successful acquire: token, valid-until in simulated time, fencing token.
fn acquired(lease: &Lease) -> Outcome {
    let valid_until = history::now() + lease.remaining();
    Outcome::Acquired {
        token: lease.owner_token.to_string(),
        valid_until,
        fence: lease.fencing_token.0,
    }
}

/// Releases `lease` and records the call.
async fn release(
    lock: &Lock,
    history: &History,
    client: usize,
    key: &str,
    ttl: i64,
    lease: &Lease,
) {
    let started = history::now();
    let outcome = match lock.release(None, lease).await {
        Ok(deleted) => Outcome::Released { deleted },
        Err(e) => Outcome::Error { code: e.code() },
    };
    record(history, client, Op::Release, key, ttl, started, outcome);
}

fn write(history: &History, resource: &GuardedResource, client: usize, key: &str, fence: u128) {
    let accepted = resource.write(key, fence);
    history.record(Event::Write {
        client,
        key: key.to_string(),
        fence,
        accepted,
        at: history::now(),
    });
}

pub async fn run_client(
    plan: ClientPlan,
    runtime: &'static Runtime,
    history: History,
    resource: GuardedResource,
) -> turmoil::Result {
    let env = Environment {
        network: Arc::new(TurmoilNetwork),
        discovery: Arc::new(MemoryDiscovery::new()),
        credential_store: Arc::new(MemoryCredentialStore::new()),
        clock_origin: tokio::time::Instant::now(),
        clock_rate: plan.clock_rate,
        random_seed: Some(plan.seed),
    };
    let lock = Lock::with_environment(runtime, env).await?;
    let mut config: Vec<(String, String)> = (0..plan.servers)
        .map(|s| (format!("connections.{s}.uri"), format!("mc{s}:11211")))
        .collect();
    config.extend(OPTIONS.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    if plan.mode == Mode::Quorum {
        config.push(("options.mode".into(), "quorum".into()));
        config.push(("options.max_lease".into(), MAX_LEASE_MS.to_string()));
    }
    config.push(("credential.username".into(), CREDENTIALS.0.into()));
    config.push(("credential.password".into(), CREDENTIALS.1.into()));
    lock.configure(&config).await?;
    lock.open(None).await?;

    let mut rng = SmallRng::seed_from_u64(plan.seed);
    let c = plan.index;
    for _ in 0..ROUNDS {
        honour_pauses(&plan).await;
        let key = KEYS[rng.random_range(0..KEYS.len())];
        let ttl = ttls(plan.mode)[rng.random_range(0..ttls(plan.mode).len())];
        let blocking = rng.random_bool(0.6);
        let started = history::now();
        let (op, result) = if blocking {
            let timeout = [500, 1_500, 4_000][rng.random_range(0..3)];
            (
                Op::Acquire,
                lock.acquire(None, key.as_bytes(), ttl, timeout)
                    .await
                    .map(Some),
            )
        } else {
            (
                Op::TryAcquire,
                lock.try_acquire(None, key.as_bytes(), ttl).await,
            )
        };
        let lease = match result {
            Ok(Some(lease)) => {
                record(&history, c, op, key, ttl, started, acquired(&lease));
                write(&history, &resource, c, key, lease.fencing_token.0);
                Some(lease)
            }
            Ok(None) => {
                record(&history, c, op, key, ttl, started, Outcome::Busy);
                None
            }
            Err(e) => {
                record(
                    &history,
                    c,
                    op,
                    key,
                    ttl,
                    started,
                    Outcome::Error { code: e.code() },
                );
                None
            }
        };
        if let Some(mut lease) = lease {
            // Hold, sometimes past the ttl (a slow holder), sometimes extending half way.
            let hold = rng.random_range(0..(ttl as u64 * 6 / 5).max(1));
            if rng.random_bool(0.3) {
                tokio::time::sleep(Duration::from_millis(hold / 2)).await;
                honour_pauses(&plan).await;
                let started = history::now();
                let outcome = match lock.extend(None, &lease, ttl).await {
                    Ok(extended) => {
                        lease = extended;
                        Outcome::Extended {
                            valid_until: history::now() + lease.remaining(),
                        }
                    }
                    Err(e) => Outcome::Error { code: e.code() },
                };
                record(&history, c, Op::Extend, key, ttl, started, outcome);
            }
            tokio::time::sleep(Duration::from_millis(hold)).await;
            honour_pauses(&plan).await;
            // The holder acts on the resource again, perhaps stale by now: the token decides.
            write(&history, &resource, c, key, lease.fencing_token.0);
            if rng.random_bool(0.9) {
                release(&lock, &history, c, key, ttl, &lease).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..300))).await;
    }

    // Liveness: once every fault is over and every client is done with its rounds, each client
    // must get the lock within the bound.
    plan.rounds_left
        .set(plan.rounds_left.get().saturating_sub(1));
    while plan.rounds_left.get() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let now = history::now();
    if now < plan.faults_end {
        tokio::time::sleep(plan.faults_end - now).await;
    }
    let key = KEYS[0];
    let started = history::now();
    let deadline = started + plan.liveness_timeout;
    loop {
        let left = deadline.saturating_sub(history::now()).as_millis() as i64;
        match lock.acquire(None, key.as_bytes(), 300, left).await {
            Ok(lease) => {
                record(
                    &history,
                    c,
                    Op::Liveness,
                    key,
                    300,
                    started,
                    acquired(&lease),
                );
                write(&history, &resource, c, key, lease.fencing_token.0);
                release(&lock, &history, c, key, 300, &lease).await;
                break;
            }
            // A server still marked down, or a connection still recovering: keep trying until the bound.
            Err(e) if e.code() != Some(ErrorCode::LockTimeout) && history::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                record(
                    &history,
                    c,
                    Op::Liveness,
                    key,
                    300,
                    started,
                    Outcome::Error { code: e.code() },
                );
                break;
            }
        }
    }
    let _ = lock.close(None).await;
    Ok(())
}
