//! `memlock demo`: several `memlock` worker processes contend for one key on real memcached.
//!
//! Round 1: every worker waits for the key, holds it briefly and releases it; the demo prints the
//! hand-offs and checks from the workers' own reports that no two held it at once.
//! Round 2: a worker takes the key and is killed (SIGKILL) while holding it; another worker waits
//! and gets the key once the dead holder's lease expires — no release ever came.
//!
//! Without a configured server it starts `memcached` on a free loopback port and stops it after.

use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::output::Exit;
use crate::settings::Pairs;

#[derive(Args)]
pub struct DemoArgs {
    /// Workers contending in round 1.
    #[arg(long, default_value_t = 4)]
    workers: u32,
    /// The key they contend for.
    #[arg(long, default_value = "demo:job")]
    key: String,
    /// Lease ttl, milliseconds (round 2 waits about this long for the killed holder's lease).
    #[arg(long, default_value_t = 2_000)]
    ttl: i64,
    /// How long each worker holds the key, milliseconds.
    #[arg(long, default_value_t = 300)]
    hold: u64,
}

#[derive(Args)]
pub struct WorkerArgs {
    #[arg(long)]
    id: u32,
    #[arg(long)]
    key: String,
    #[arg(long)]
    ttl: i64,
    #[arg(long)]
    hold: u64,
    /// Hold until killed instead of releasing.
    #[arg(long)]
    never_release: bool,
}

/// One line a worker prints.
#[derive(Serialize, Deserialize, Debug, Clone)]
struct Event {
    worker: u32,
    event: String,
    at_us: u64,
    #[serde(default)]
    detail: String,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn emit(worker: u32, event: &str, detail: String) {
    let line = serde_json::to_string(&Event {
        worker,
        event: event.into(),
        at_us: now_us(),
        detail,
    });
    if let Ok(line) = line {
        println!("{line}");
    }
}

/// The worker process: wait, hold, release (or hold until killed).
pub async fn worker(args: WorkerArgs, config: Pairs) -> Exit {
    let lock = match crate::open(&crate::with_default_server(config), None).await {
        Ok(lock) => lock,
        Err(e) => {
            emit(args.id, "error", e.to_string());
            return Exit::Unavailable;
        }
    };
    emit(args.id, "waiting", String::new());
    let started = Instant::now();
    let lease = match lock
        .acquire(None, args.key.as_bytes(), args.ttl, 60_000)
        .await
    {
        Ok(lease) => lease,
        Err(e) => {
            emit(args.id, "error", e.to_string());
            return Exit::Timeout;
        }
    };
    emit(
        args.id,
        "acquired",
        format!("{:.2}", started.elapsed().as_secs_f64()),
    );
    if args.never_release {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(Duration::from_millis(args.hold)).await;
    // Report before releasing, so the report never claims less than the worker held.
    emit(args.id, "releasing", String::new());
    match lock.release(None, &lease).await {
        Ok(true) => Exit::Ok,
        Ok(false) => {
            emit(args.id, "error", "lease was lost before release".into());
            Exit::Busy
        }
        Err(e) => {
            emit(args.id, "error", e.to_string());
            Exit::Unavailable
        }
    }
}

struct DemoServer(Option<std::process::Child>);

impl Drop for DemoServer {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start_memcached() -> Result<(DemoServer, String), String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))?;
    let mut command = std::process::Command::new("memcached");
    command.args([
        "-l",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        "0",
        "-m",
        "64",
    ]);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        command.args(["-u", "root"]);
    }
    let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().map_err(|e| {
        format!("cannot start memcached ({e}); install it (`just setup`, or `apt-get install memcached`) or pass --server HOST:PORT")
    })?;
    let server = DemoServer(Some(child));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!("memcached did not start on port {port}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok((server, format!("127.0.0.1:{port}")))
}

struct Timeline {
    started: Instant,
    json: bool,
}

impl Timeline {
    fn say(&self, text: &str) {
        if self.json {
            println!(
                "{}",
                serde_json::json!({ "at_ms": self.started.elapsed().as_millis() as u64, "demo": text })
            );
        } else {
            println!("[{:>7.3}s] {text}", self.started.elapsed().as_secs_f64());
        }
    }
}

fn spawn_worker(
    config: &Pairs,
    args: &WorkerArgs,
    tx: mpsc::UnboundedSender<Event>,
) -> std::io::Result<Child> {
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    for (key, value) in config {
        command.arg("--set").arg(format!("{key}={value}"));
    }
    command
        .env_remove("MEMLOCK_CONFIG")
        .env_remove("MEMLOCK_SERVERS")
        .args([
            "demo-worker",
            "--id",
            &args.id.to_string(),
            "--key",
            &args.key,
        ])
        .args([
            "--ttl",
            &args.ttl.to_string(),
            "--hold",
            &args.hold.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if args.never_release {
        command.arg("--never-release");
    }
    let mut child = command.spawn()?;
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(event) = serde_json::from_str::<Event>(&line) {
                    let _ = tx.send(event);
                }
            }
        });
    }
    Ok(child)
}

fn describe(event: &Event) -> String {
    match event.event.as_str() {
        "waiting" => format!("worker {} waits for the lock", event.worker),
        "acquired" => format!(
            "worker {} ACQUIRED it (waited {} s)",
            event.worker, event.detail
        ),
        "releasing" => format!("worker {} releases it", event.worker),
        _ => format!("worker {} {}: {}", event.worker, event.event, event.detail),
    }
}

/// Checks the holding intervals reported by workers for overlap.
fn overlaps(events: &[Event]) -> Vec<String> {
    let mut intervals: Vec<(u64, u64, u32)> = Vec::new();
    for e in events.iter().filter(|e| e.event == "acquired") {
        let end = events
            .iter()
            .find(|r| r.worker == e.worker && r.event == "releasing")
            .map(|r| r.at_us)
            .unwrap_or(u64::MAX);
        intervals.push((e.at_us, end, e.worker));
    }
    intervals.sort();
    intervals
        .windows(2)
        .filter(|w| w[1].0 < w[0].1)
        .map(|w| format!("workers {} and {} held the key at once", w[0].2, w[1].2))
        .collect()
}

pub async fn run(args: DemoArgs, config: Pairs, json: bool) -> Exit {
    let t = Timeline {
        started: Instant::now(),
        json,
    };
    let configured = config
        .iter()
        .any(|(k, _)| k.to_ascii_lowercase().starts_with("connection"));
    let (_server, config) = if configured {
        let servers: Vec<&str> = config
            .iter()
            .filter(|(k, _)| k.to_ascii_lowercase().starts_with("connection"))
            .map(|(_, v)| v.as_str())
            .collect();
        t.say(&format!(
            "using the configured memcached ({})",
            servers.join(", ")
        ));
        (DemoServer(None), config)
    } else {
        match start_memcached() {
            Ok((server, address)) => {
                t.say(&format!("started memcached at {address} for this demo"));
                let mut config = config;
                config.push(("connection.uri".into(), format!("memcached://{address}")));
                (server, config)
            }
            Err(e) => {
                eprintln!("memlock demo: {e}");
                return Exit::Unavailable;
            }
        }
    };
    t.say(&format!(
        "round 1: {} worker processes contend for {:?} (ttl {} ms, each holds {} ms)",
        args.workers, args.key, args.ttl, args.hold
    ));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut children = Vec::new();
    for id in 1..=args.workers {
        let worker = WorkerArgs {
            id,
            key: args.key.clone(),
            ttl: args.ttl,
            hold: args.hold,
            never_release: false,
        };
        match spawn_worker(&config, &worker, tx.clone()) {
            Ok(child) => children.push(child),
            Err(e) => {
                eprintln!("memlock demo: cannot start a worker: {e}");
                return Exit::Internal;
            }
        }
    }
    // Each worker's last report is `releasing` or `error`; print reports as they arrive.
    let mut events = Vec::new();
    let mut finished = 0;
    while finished < args.workers {
        let Some(event) = rx.recv().await else { break };
        t.say(&describe(&event));
        finished += u32::from(event.event == "releasing" || event.event == "error");
        events.push(event);
    }
    let mut failed = false;
    for mut child in children {
        failed |= !child.wait().await.map(|s| s.success()).unwrap_or(false);
    }
    let conflicts = overlaps(&events);
    let acquisitions = events.iter().filter(|e| e.event == "acquired").count();
    t.say(&format!(
        "round 1: {acquisitions} acquisitions, {} overlapping holders",
        if conflicts.is_empty() {
            "no".to_string()
        } else {
            conflicts.join("; ")
        }
    ));

    t.say("round 2: a holder is killed (SIGKILL) while holding the lock; nobody releases it");
    let holder = WorkerArgs {
        id: 100,
        key: args.key.clone(),
        ttl: args.ttl,
        hold: 0,
        never_release: true,
    };
    let mut holder_child = match spawn_worker(&config, &holder, tx.clone()) {
        Ok(child) => child,
        Err(e) => {
            eprintln!("memlock demo: cannot start a worker: {e}");
            return Exit::Internal;
        }
    };
    loop {
        match rx.recv().await {
            Some(e) if e.worker == 100 && e.event == "acquired" => {
                t.say(&describe(&e));
                break;
            }
            Some(e) if e.event == "error" => {
                t.say(&describe(&e));
                return Exit::Unavailable;
            }
            Some(_) => {}
            None => return Exit::Internal,
        }
    }
    let _ = holder_child.kill().await;
    t.say("killed worker 100 while it held the lock");
    let killed_at = Instant::now();
    let next = WorkerArgs {
        id: 101,
        key: args.key.clone(),
        ttl: args.ttl,
        hold: args.hold,
        never_release: false,
    };
    let mut next_child = match spawn_worker(&config, &next, tx.clone()) {
        Ok(child) => child,
        Err(e) => {
            eprintln!("memlock demo: cannot start a worker: {e}");
            return Exit::Internal;
        }
    };
    drop(tx);
    let mut round2_ok = false;
    while let Some(e) = rx.recv().await {
        if e.worker == 101 {
            t.say(&describe(&e));
            if e.event == "acquired" {
                t.say(&format!(
                    "worker 101 got the lock {:.2} s after the holder died: its lease expired (ttl {} ms, served as T{} s)",
                    killed_at.elapsed().as_secs_f64(),
                    args.ttl,
                    (args.ttl as u64).div_ceil(1000) + 1
                ));
                round2_ok = true;
            }
        }
    }
    failed |= !next_child
        .wait()
        .await
        .map(|s| s.success())
        .unwrap_or(false);
    if failed || !conflicts.is_empty() || !round2_ok || acquisitions != args.workers as usize {
        t.say("demo FAILED");
        return Exit::Internal;
    }
    t.say("demo done: mutual exclusion held, and a dead holder's lock expired by itself");
    Exit::Ok
}
