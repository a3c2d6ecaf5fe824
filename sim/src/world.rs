//! One simulation run: a turmoil world with fake memcached servers and component clients, the
//! case's faults applied on schedule, the history recorded and checked.

use std::collections::BTreeMap;
use std::time::Duration;

use memlock_host::Runtime;

use crate::check::{self, Limits, Report};
use crate::fake::serve::{ServerConfig, ServerHandle, serve_connection};
use crate::history::{Event, History, fingerprint};
use crate::resource::GuardedResource;
use crate::schedule::{Case, FaultKind, Mode};
use crate::workload::{self, ClientPlan};

/// Fake memcached's memory: plenty; eviction comes from the `evict` fault. Every server requires
/// authentication (`-Y`), so every run also checks that clients authenticate each connection
/// they open, restarts included.
const SERVER: ServerConfig = ServerConfig {
    memory_limit: 64 << 20,
    evict: true,
    credentials: Some(crate::workload::CREDENTIALS),
};
/// How long every server has run when a run begins: a cluster in service, not a cold one (which
/// quorum mode would refuse for `options.max_lease`). A restarted process starts from zero.
const UP_BEFORE_RUN: Duration = Duration::from_secs(3600);
/// A run longer than this in simulated time is a hang.
const SIMULATION_LIMIT: Duration = Duration::from_secs(180);

pub struct RunResult {
    pub report: Report,
    pub events: Vec<Event>,
    pub fingerprint: u64,
    pub simulated: Duration,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, usize>,
}

/// A fault's start or end, at a simulated instant.
enum Action {
    Begin(usize),
    End(usize),
}

fn liveness_timeout(case: &Case) -> Duration {
    // Leftover items (crashed holders, orphans) live at most ceil(max ttl)+1 seconds; then each
    // client needs a few round trips and retry intervals.
    let max_ttl = *workload::ttls(case.mode).iter().max().unwrap_or(&0) as u64;
    let base = Duration::from_millis(
        (max_ttl.div_ceil(1000) + 1) * 1000 + 2_000 + 500 * case.clients as u64,
    );
    match case.mode {
        Mode::Shard => base,
        // A server restarted at the end of the faults counts again once it has run max_lease
        // (as told by an uptime that may run 3 s ahead, in whole seconds).
        Mode::Quorum => base + Duration::from_millis(workload::MAX_LEASE_MS + 4_000),
    }
}

/// Runs `case` and checks its history.
pub fn run(case: &Case, runtime: &'static Runtime) -> RunResult {
    let mut sim = turmoil::Builder::new()
        .rng_seed(case.seed)
        .simulation_duration(SIMULATION_LIMIT)
        .min_message_latency(Duration::from_micros(100))
        .max_message_latency(Duration::from_millis(3))
        .build();
    let history = History::default();
    let resource = GuardedResource::default();

    let handles: Vec<ServerHandle> = (0..case.servers)
        .map(|_| ServerHandle::new(SERVER, 0, Duration::ZERO))
        .collect();
    let seed = case.seed;
    for (s, handle) in handles.iter().enumerate() {
        let handle = handle.clone();
        let restarts = std::rc::Rc::new(std::cell::Cell::new(0u64));
        sim.host(format!("mc{s}"), move || {
            let handle = handle.clone();
            let restarts = restarts.clone();
            async move {
                // Every start, the first included, happens here so the server's clock is
                // simulated time: a new pid, a new tick phase, no items.
                let n = restarts.get();
                restarts.set(n + 1);
                let phase = Duration::from_millis(
                    (seed.wrapping_add(n * 373).wrapping_add(s as u64 * 619)) % 1000,
                );
                let up_before = if n == 0 {
                    UP_BEFORE_RUN
                } else {
                    Duration::ZERO
                };
                handle.restart(SERVER, 1000 * (s as u64 + 1) + n, phase, up_before);
                let listener = turmoil::net::TcpListener::bind("0.0.0.0:11211").await?;
                loop {
                    let (stream, peer) = listener.accept().await?;
                    let name =
                        turmoil::reverse_lookup(peer.ip()).unwrap_or_else(|| peer.ip().to_string());
                    tokio::spawn(serve_connection(stream, name, handle.clone()));
                }
            }
        });
    }

    let liveness = liveness_timeout(case);
    let rounds_left = std::rc::Rc::new(std::cell::Cell::new(case.clients));
    for c in 0..case.clients {
        let pauses = case
            .faults
            .iter()
            .filter(|f| matches!(f.kind, FaultKind::Pause { client } if client == c))
            .map(|f| (f.at, f.duration))
            .collect();
        let plan = ClientPlan {
            index: c,
            seed: case
                .seed
                .wrapping_add(c as u64 + 1)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15),
            servers: case.servers,
            mode: case.mode,
            clock_rate: 1.0 + case.drift[c],
            pauses,
            faults_end: case.faults_end(),
            liveness_timeout: liveness,
            rounds_left: rounds_left.clone(),
        };
        sim.client(
            format!("c{c}"),
            workload::run_client(plan, runtime, history.clone(), resource.clone()),
        );
    }

    let mut actions: Vec<(Duration, Action)> = Vec::new();
    for (i, fault) in case.faults.iter().enumerate() {
        actions.push((fault.at, Action::Begin(i)));
        actions.push((fault.at + fault.duration, Action::End(i)));
    }
    actions.sort_by_key(|(at, _)| *at);
    let mut faults: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut next = 0;
    let mut failure = None;
    loop {
        while next < actions.len() && actions[next].0 <= sim.elapsed() {
            let (_, action) = &actions[next];
            next += 1;
            match action {
                Action::Begin(i) => {
                    let fault = &case.faults[*i];
                    *faults.entry(fault.kind.name()).or_default() += 1;
                    history.record(Event::Fault {
                        description: fault.to_string(),
                        at: sim.elapsed(),
                    });
                    begin(&mut sim, &handles, case.clients, &fault.kind);
                }
                Action::End(i) => end(&mut sim, &handles, case.clients, &case.faults[*i].kind),
            }
        }
        match sim.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    let simulated = sim.elapsed();
    for (s, handle) in handles.iter().enumerate() {
        for stored in std::mem::take(&mut handle.lock().stores) {
            history.record(Event::Store {
                server: s,
                peer: stored.peer,
                key: stored.key,
                value: stored.value,
                lives_until: stored.lives_until,
                at: stored.at,
            });
        }
        for at in std::mem::take(&mut handle.lock().restarts) {
            history.record(Event::Restart { server: s, at });
        }
        for (peer, at) in std::mem::take(&mut handle.lock().lost_replies) {
            history.record(Event::LostReply {
                server: s,
                peer,
                at,
            });
        }
        for dropped in std::mem::take(&mut handle.lock().drops) {
            history.record(Event::Drop {
                server: s,
                key: dropped.key,
                value: dropped.value,
                at: dropped.at,
                cause: dropped.cause,
            });
        }
        for change in std::mem::take(&mut handle.lock().changes) {
            history.record(match change.new {
                None => Event::Delete {
                    server: s,
                    peer: change.peer,
                    key: change.key,
                    value: change.old,
                    at: change.at,
                },
                Some(new) => Event::Replace {
                    server: s,
                    peer: change.peer,
                    key: change.key,
                    old: change.old,
                    new,
                    at: change.at,
                },
            });
        }
    }
    let events = history.events();
    let limits = Limits {
        call_bound: check::call_bound(
            workload::OP_TIMEOUT,
            workload::RECONNECT,
            case.mode,
            case.servers,
        ),
        liveness_timeout: liveness,
        rollback_window: (workload::OP_TIMEOUT + workload::RECONNECT) * case.servers.max(1) as u32,
        max_lease: Duration::from_millis(workload::MAX_LEASE_MS),
    };
    let mut report = check::check(case, &events, &limits, |key| {
        memlock_guest::driver::sharding::server_index(key.as_bytes(), case.servers)
    });
    if let Some(e) = failure {
        report.violations.push(format!("simulation stopped: {e}"));
    }
    RunResult {
        fingerprint: fingerprint(&events),
        report,
        events,
        simulated,
        faults,
    }
}

fn begin(sim: &mut turmoil::Sim<'_>, handles: &[ServerHandle], clients: usize, kind: &FaultKind) {
    match *kind {
        FaultKind::Partition { client, server } => {
            sim.partition(format!("c{client}"), format!("mc{server}"))
        }
        FaultKind::Hold { client, server } => sim.hold(format!("c{client}"), format!("mc{server}")),
        FaultKind::Isolate { server } => {
            for c in 0..clients {
                sim.partition(format!("c{c}"), format!("mc{server}"));
            }
        }
        FaultKind::Delay { server } => {
            for c in 0..clients {
                sim.set_link_latency(
                    format!("c{c}"),
                    format!("mc{server}"),
                    Duration::from_millis(150),
                );
            }
        }
        FaultKind::LoseReply { server } => handles[server].lock().lose_next_reply = true,
        FaultKind::Crash { server } => sim.crash(format!("mc{server}")),
        FaultKind::Reincarnate { server } => {
            handles[server].lock().keep_process = true;
            sim.crash(format!("mc{server}"));
        }
        FaultKind::Evict { server } => handles[server].evict_all(sim.elapsed()),
        FaultKind::Garbage { server } => handles[server].lock().garbage = true,
        FaultKind::Full { server } => handles[server].lock().full = true,
        FaultKind::Pause { .. } => {}
    }
}

fn end(sim: &mut turmoil::Sim<'_>, handles: &[ServerHandle], clients: usize, kind: &FaultKind) {
    match *kind {
        FaultKind::Partition { client, server } => {
            sim.repair(format!("c{client}"), format!("mc{server}"))
        }
        FaultKind::Hold { client, server } => {
            sim.release(format!("c{client}"), format!("mc{server}"))
        }
        FaultKind::Isolate { server } => {
            for c in 0..clients {
                sim.repair(format!("c{c}"), format!("mc{server}"));
            }
        }
        FaultKind::Delay { server } => {
            for c in 0..clients {
                sim.set_link_latency(
                    format!("c{c}"),
                    format!("mc{server}"),
                    Duration::from_millis(1),
                );
            }
        }
        FaultKind::Crash { server } | FaultKind::Reincarnate { server } => {
            sim.bounce(format!("mc{server}"))
        }
        FaultKind::Garbage { server } => handles[server].lock().garbage = false,
        FaultKind::Full { server } => handles[server].lock().full = false,
        FaultKind::LoseReply { .. } | FaultKind::Evict { .. } | FaultKind::Pause { .. } => {}
    }
}
