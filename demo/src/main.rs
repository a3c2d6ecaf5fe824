//! `memlock-demo` (`just demo`): the `memlock` CLI at work on real memcached, driven from outside
//! exactly as a user drives it — the product binary carries no demo code.
//!
//! Round 1: several workers, each `memlock run KEY -- memlock-demo hold`, contend for one key.
//! The held command reports when it starts and ends; the demo prints the hand-offs and checks
//! from those reports that no two workers held the key at once and that every hand-off got a
//! larger fencing token ([`holding`]).
//! Round 2: a worker's `memlock` is killed (SIGKILL) while it holds the key; its command dies with
//! it, `memlock try-acquire` shows the key still held (nobody released it), and the next worker
//! gets the key once the dead holder's lease expires.
//!
//! Without `--server` (or `$MEMLOCK_SERVERS` / `$MEMLOCK_CONFIG`) it starts memcached on a free
//! loopback port with the test harness's launcher and stops it afterwards.

mod critical_section;
mod holding;
mod round;
mod workers;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use memlock_tests::Memcached;

use round::{Round, Running};
use workers::{Hold, Memlock};

/// Worker processes contend for one key through the `memlock` CLI on real memcached.
#[derive(Parser)]
#[command(name = "memlock-demo", about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    internal: Option<Internal>,
    #[command(flatten)]
    demo: DemoArgs,
}

#[derive(Subcommand)]
enum Internal {
    /// The command a worker runs while it holds the key.
    #[command(hide = true)]
    Hold(critical_section::HoldArgs),
}

#[derive(Args)]
struct DemoArgs {
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
    /// memcached to use (`host:port`), repeatable; otherwise one is started for the demo.
    #[arg(long = "server", short = 's', value_name = "HOST:PORT")]
    servers: Vec<String>,
    /// The `memlock` binary to drive (default: the one built beside this binary).
    #[arg(long, value_name = "PATH")]
    memlock: Option<PathBuf>,
    /// Print the timeline as JSON lines.
    #[arg(long)]
    json: bool,
}

/// Prints the demo's timeline.
pub struct Timeline {
    started: Instant,
    json: bool,
}

impl Timeline {
    pub fn say(&self, text: &str) {
        let at = self.started.elapsed();
        if self.json {
            let line = serde_json::json!({ "at_ms": at.as_millis() as u64, "demo": text });
            println!("{line}");
        } else {
            println!("[{:>7.3}s] {text}", at.as_secs_f64());
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Internal::Hold(args)) = cli.internal {
        return critical_section::hold(args);
    }
    let t = Timeline {
        started: Instant::now(),
        json: cli.demo.json,
    };
    match demo(&cli.demo, &t) {
        Ok(()) => {
            t.say("demo done: mutual exclusion held, and a dead holder's lock expired by itself");
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for problem in &problems {
                t.say(&format!("PROBLEM: {problem}"));
            }
            t.say("demo FAILED");
            ExitCode::FAILURE
        }
    }
}

fn demo(args: &DemoArgs, t: &Timeline) -> Result<(), Vec<String>> {
    let (_server, global) = server(args, t).map_err(|e| vec![e])?;
    let memlock = Memlock::locate(args.memlock.clone(), global).map_err(|e| vec![e])?;
    t.say(&format!("driving {}", memlock.path().display()));
    let hold = Duration::from_millis(args.hold);
    // Generous: every worker waits its turn, each up to a lease, plus process start-up.
    let deadline = Duration::from_secs(60)
        + Duration::from_millis(args.ttl.max(0) as u64) * (args.workers + 2)
        + hold * args.workers;

    t.say(&format!(
        "round 1: {} `memlock run` workers contend for {:?} (ttl {} ms, each holds {} ms)",
        args.workers, args.key, args.ttl, args.hold
    ));
    let mut round = Round::new(t, deadline);
    let mut running = Running::default();
    for worker in 1..=args.workers {
        let child = memlock.start_worker(
            worker,
            &args.key,
            args.ttl,
            &Hold::For(hold),
            round.sender(),
        );
        running.add(
            worker,
            child.map_err(|e| vec![format!("cannot start a worker: {e}")])?,
        );
    }
    round.wait_until(|r| (1..=args.workers).all(|w| r.finished(w)))?;
    running.wait_all(&mut round);
    let tokens = round.tokens_in_order();
    round.check(args.workers as usize)?;
    t.say(&format!(
        "round 1: {} hand-offs, no overlapping holders, the fencing token grew at each ({} to {})",
        args.workers,
        tokens.first().map_or("?", String::as_str),
        tokens.last().map_or("?", String::as_str)
    ));

    t.say("round 2: a holder's memlock is killed (SIGKILL) while it holds the key; nobody releases it");
    let mut round = Round::new(t, deadline);
    let holder = memlock.start_worker(100, &args.key, args.ttl, &Hold::UntilKilled, round.sender());
    running.add(
        100,
        holder.map_err(|e| vec![format!("cannot start a worker: {e}")])?,
    );
    round.wait_until(|r| r.entered(100) || r.finished(100))?;
    running.kill(100);
    round.wait_until(|r| r.finished(100))?;
    let killed_at = Instant::now();
    t.say("killed worker 100's memlock while it held the key; its command died with it");
    match memlock.try_acquire(&args.key, args.ttl) {
        Ok(output) if output.status.code() == Some(1) => t.say(&format!(
            "`memlock try-acquire {}`: busy — the dead holder's lease is still there",
            args.key
        )),
        Ok(output) => round.problem(format!(
            "`memlock try-acquire` while the dead holder's lease lives: {} {}",
            output.status,
            String::from_utf8_lossy(&output.stdout).trim()
        )),
        Err(e) => round.problem(format!("cannot run `memlock try-acquire`: {e}")),
    }
    let next = memlock.start_worker(101, &args.key, args.ttl, &Hold::For(hold), round.sender());
    running.add(
        101,
        next.map_err(|e| vec![format!("cannot start a worker: {e}")])?,
    );
    round.wait_until(|r| r.entered(101) || r.finished(101))?;
    if round.entered(101) {
        t.say(&format!(
            "worker 101 got the key {:.2} s after the holder died: its lease expired (ttl {} ms, stored with a {} s memcached ttl)",
            killed_at.elapsed().as_secs_f64(),
            args.ttl,
            (args.ttl.max(0) as u64).div_ceil(1000) + 1
        ));
    }
    round.wait_until(|r| r.finished(101))?;
    running.wait_all(&mut round);
    round.check(2)
}

/// The servers to use, as global `memlock` arguments, and the memcached started for the demo.
fn server(args: &DemoArgs, t: &Timeline) -> Result<(Option<Memcached>, Vec<String>), String> {
    if !args.servers.is_empty() {
        t.say(&format!("using memcached at {}", args.servers.join(", ")));
        let global = args
            .servers
            .iter()
            .flat_map(|s| ["--server".to_string(), s.clone()])
            .collect();
        return Ok((None, global));
    }
    for variable in ["MEMLOCK_SERVERS", "MEMLOCK_CONFIG"] {
        if let Ok(value) = std::env::var(variable) {
            t.say(&format!(
                "using the configured memcached (${variable}={value})"
            ));
            return Ok((None, Vec::new()));
        }
    }
    memlock_tests::memcached::installed()?;
    let server = Memcached::start();
    let address = format!("127.0.0.1:{}", server.port());
    t.say(&format!("started memcached at {address} for this demo"));
    Ok((Some(server), vec!["--server".into(), address]))
}
