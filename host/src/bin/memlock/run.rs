//! `memlock run KEY -- COMMAND…`: run a command while holding a lock, like `flock` across machines.
//!
//! Acquire (waiting up to `--timeout`, or forever with `--wait`), start the command with the lease
//! in its environment, renew the lease while it runs ([`memlock_host::LeaseGuard`]), and release it
//! when the command exits, exiting with the command's status.
//!
//! The command must never outlive the lease. So:
//! - **renewal keeps failing**: the command gets SIGTERM at (valid-until − [`KILL_MARGIN`] −
//!   `--grace`) and SIGKILL at (valid-until − [`KILL_MARGIN`]): it is dead before the lease's
//!   validity ends, when another client may take the key. A renewal that succeeds in time moves
//!   both. `--grace` must leave room for renewal before the SIGTERM.
//! - **the lease is reported lost** (its item deleted, taken over, its server restarted): SIGTERM
//!   at once, SIGKILL after `--grace` or at the kill point, whichever is first;
//! - **memlock dies** (SIGKILL, OOM): the command gets SIGKILL from the kernel
//!   (`PR_SET_PDEATHSIG`, set before exec).
//!
//! Signals: SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2 sent to `memlock` are forwarded to the command;
//! SIGINT and SIGQUIT too unless stdin is a terminal (the terminal already delivers them to the
//! command, which shares `memlock`'s process group). Handlers are installed before anything else:
//! a signal that arrives while the lock is awaited ends the wait (exit 128+N, nothing left held);
//! one that arrives between acquisition and the command's start is delivered to the command as soon
//! as it starts; none is sent after the command has been reaped.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde_json::json;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::output::{Exit, Output};
use crate::settings::Pairs;

/// How long before the lease's validity ends the SIGKILL is sent: the kill and the reaping of
/// the process take time too.
const KILL_MARGIN: Duration = Duration::from_millis(100);
/// The default `--grace`, when the ttl leaves room for it.
const DEFAULT_GRACE_MS: u64 = 5_000;

#[derive(Args)]
pub struct RunArgs {
    /// The lock key.
    key: String,
    /// Lease ttl in milliseconds; renewed every third of it while the command runs.
    #[arg(long, default_value_t = 10_000)]
    ttl: i64,
    /// How long to wait for the lock, in milliseconds (0: one attempt, exit 1 if held).
    #[arg(long, default_value_t = 10_000)]
    timeout: i64,
    /// Wait for the lock as long as it takes (overrides --timeout).
    #[arg(long)]
    wait: bool,
    /// Milliseconds between SIGTERM and SIGKILL when the command must stop. Default 5000, or
    /// less when the ttl leaves less room (see `memlock run` in README).
    #[arg(long)]
    grace: Option<u64>,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

fn event(out: &Output, value: serde_json::Value) {
    if out.json {
        eprintln!("{value}");
    }
}

/// The longest grace that leaves renewal time before the SIGTERM. Renewal starts a third of the
/// ttl after the last success; the lease is valid until the ttl minus the drift allowance
/// (ttl/100 + 2 ms by default); the SIGKILL comes [`KILL_MARGIN`] before that. Half of what is
/// left between the renewal and the SIGKILL is for renewing (and retrying), half for the grace.
fn max_grace_ms(ttl_ms: u64) -> u64 {
    let drift = ttl_ms / 100 + 2;
    let window = (ttl_ms - ttl_ms / 3).saturating_sub(drift + KILL_MARGIN.as_millis() as u64);
    window / 2
}

/// The signals `run` forwards, each with whether it is forwarded at all.
fn forwarded_signals() -> Vec<(SignalKind, libc::c_int, bool)> {
    let interactive_forwarded = !std::io::stdin().is_terminal();
    vec![
        (SignalKind::terminate(), libc::SIGTERM, true),
        (SignalKind::hangup(), libc::SIGHUP, true),
        (SignalKind::user_defined1(), libc::SIGUSR1, true),
        (SignalKind::user_defined2(), libc::SIGUSR2, true),
        (SignalKind::interrupt(), libc::SIGINT, interactive_forwarded),
        (SignalKind::quit(), libc::SIGQUIT, interactive_forwarded),
    ]
}

/// A signal `memlock` received, and whether it is for the command too.
#[derive(Clone, Copy)]
struct Received {
    number: libc::c_int,
    forward: bool,
}

/// Installs the handlers now; every signal received is queued.
fn catch_signals() -> std::io::Result<mpsc::UnboundedReceiver<Received>> {
    let (tx, rx) = mpsc::unbounded_channel();
    for (kind, number, forward) in forwarded_signals() {
        let mut stream = signal(kind)?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                if tx.send(Received { number, forward }).is_err() {
                    return;
                }
            }
        });
    }
    Ok(rx)
}

/// Shortest `--ttl` `run` accepts, in ms: below it the window between the first renewal and the
/// SIGKILL ([`max_grace_ms`]) is too small to renew in.
const MIN_TTL_MS: u64 = 250;

/// The machine's monotonic clock (`CLOCK_MONOTONIC`, which tokio's `Instant` reads too), in ns:
/// lets a script compare the deadlines `run` reports with its own clock.
fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    (now.tv_sec as u64).saturating_mul(1_000_000_000) + now.tv_nsec as u64
}

pub async fn run(args: RunArgs, config: Pairs, cid: Option<&str>, out: &Output) -> Exit {
    let ttl_ms = u64::try_from(args.ttl).unwrap_or(0);
    if ttl_ms < MIN_TTL_MS {
        return out.invalid(&format!(
            "--ttl {} ms is too short for run: the command would have to be stopped before the \
             lease could be renewed; use at least {MIN_TTL_MS} ms",
            args.ttl
        ));
    }
    let grace = match args.grace {
        Some(grace) if grace > max_grace_ms(ttl_ms) => {
            return out.invalid(&format!(
                "--grace {grace} ms leaves no time to renew a {} ms lease before the command must \
                 be stopped: use --grace of at most {} ms, or a longer --ttl",
                args.ttl,
                max_grace_ms(ttl_ms)
            ));
        }
        Some(grace) => grace,
        None => DEFAULT_GRACE_MS.min(max_grace_ms(ttl_ms)),
    };
    let grace = Duration::from_millis(grace);
    let mut signals = match catch_signals() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("memlock: cannot install signal handlers: {e}");
            return Exit::Internal;
        }
    };
    let lock = match crate::session::open(&config, cid).await {
        Ok(lock) => Arc::new(lock),
        Err(e) => return out.error(&e),
    };
    let timeout = if args.wait {
        memlock_host::lock::MAX_TIMEOUT_MS
    } else {
        args.timeout
    };
    let started = std::time::Instant::now();
    let acquire = crate::session::with_progress(
        &args.key,
        out.json,
        lock.acquire(cid, args.key.as_bytes(), args.ttl, timeout),
    );
    // A signal while waiting ends the wait; dropping the acquire cancels it, and anything it
    // took meanwhile is released.
    let acquired = tokio::select! {
        biased;
        Some(received) = signals.recv() => {
            // Closing waits for the cancelled acquire to finish and give back what it took.
            let _ = lock.close(cid).await;
            return Exit::Code(128 + received.number as u8);
        }
        acquired = acquire => acquired,
    };
    let lease = match acquired {
        Ok(lease) => lease,
        Err(e) if e.code() == Some(memlock_host::ErrorCode::LockTimeout) && timeout == 0 => {
            return out.busy(&args.key);
        }
        Err(e) => return out.error(&e),
    };
    event(
        out,
        json!({"event": "acquired", "key": args.key, "lease": lease.handle(), "fencing_token": lease.fencing_token.to_string(), "waited_ms": started.elapsed().as_millis() as u64, "valid_for_ms": lease.remaining().as_millis() as u64, "valid_until_monotonic_ns": monotonic_ns() + lease.remaining().as_nanos() as u64}),
    );
    if !out.json {
        eprintln!(
            "memlock: holding {:?} (fencing token {}), running {:?}",
            args.key,
            lease.fencing_token,
            args.command.join(" ")
        );
    }
    let mut guard = match lock.guard(lease.clone(), cid) {
        Ok(guard) => guard,
        Err(e) => return out.error(&e),
    };
    let mut command = tokio::process::Command::new(&args.command[0]);
    command
        .args(&args.command[1..])
        .env("MEMLOCK_KEY", &args.key)
        .env("MEMLOCK_LEASE", lease.handle())
        .env("MEMLOCK_FENCING_TOKEN", lease.fencing_token.to_string())
        .env("MEMLOCK_TTL_MS", args.ttl.to_string());
    // SAFETY: getpid is async-signal-safe; the closure below runs in the forked child before exec
    // and calls only prctl, getppid and _exit, which are async-signal-safe.
    let parent = unsafe { libc::getpid() };
    unsafe {
        command.pre_exec(move || {
            // The kernel sends SIGKILL to the command when memlock's thread that forked it dies
            // (the CLI runs one thread: memlock itself).
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // memlock died before the line above took effect.
            if libc::getppid() != parent {
                libc::_exit(128 + libc::SIGKILL);
            }
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let _ = guard.release().await;
            eprintln!("memlock: cannot run {:?}: {e}", args.command[0]);
            return if e.kind() == std::io::ErrorKind::NotFound {
                Exit::NotFound
            } else {
                Exit::CannotExecute
            };
        }
    };
    let pid = child.id().map(|p| p as i32);
    let send = |number: libc::c_int| {
        if let Some(pid) = pid {
            // SAFETY: kill(2) on our own child, which has not been reaped yet (every caller runs
            // before `child.wait()` has returned).
            unsafe { libc::kill(pid, number) };
        }
    };

    // Once the command must stop: when it gets SIGKILL, and whether it has.
    let mut stopping: Option<Instant> = None;
    let mut killed = false;
    // The schedule follows the current lease: each renewal moves it. Once the guard reports a
    // loss it has no lease; the last valid-until still bounds the SIGKILL.
    let mut valid_until = lease.valid_until.unwrap_or_else(Instant::now);
    let status = loop {
        if let Some(renewed) = guard.lease().and_then(|l| l.valid_until) {
            valid_until = renewed;
        }
        let kill_at =
            stopping.unwrap_or_else(|| valid_until.checked_sub(KILL_MARGIN).unwrap_or(valid_until));
        let term_at = kill_at.checked_sub(grace).unwrap_or(kill_at);
        tokio::select! {
            biased;
            status = child.wait() => break status,
            Some(received) = signals.recv() => if received.forward {
                send(received.number);
            },
            lost = guard.lost(), if stopping.is_none() => {
                eprintln!("memlock: lost the lock on {:?}: {lost}; stopping the command", args.key);
                event(out, json!({"event": "lost", "key": args.key, "reason": lost.to_string()}));
                send(libc::SIGTERM);
                stopping = Some(kill_at.min(Instant::now() + grace));
            }
            _ = tokio::time::sleep_until(term_at), if stopping.is_none() => {
                // Renewal has not moved the valid-until in time: stop the command while the
                // lease still holds.
                if guard.lease().and_then(|l| l.valid_until) != Some(valid_until) {
                    continue;
                }
                eprintln!(
                    "memlock: cannot renew the lock on {:?} in time; stopping the command (SIGKILL in {} ms)",
                    args.key,
                    kill_at.saturating_duration_since(Instant::now()).as_millis()
                );
                event(out, json!({"event": "stopping", "key": args.key, "reason": "lease not renewed in time", "kill_in_ms": kill_at.saturating_duration_since(Instant::now()).as_millis() as u64}));
                send(libc::SIGTERM);
                stopping = Some(kill_at);
            }
            _ = tokio::time::sleep_until(kill_at), if stopping.is_some() && !killed => {
                // Reaped by the next turn of the loop.
                send(libc::SIGKILL);
                killed = true;
                event(out, json!({"event": "killed", "key": args.key}));
            }
        }
    };
    if stopping.is_some() {
        // The lease is lost or about to be: nothing to release that renewal could not keep.
        return Exit::LeaseLost;
    }
    let released = guard.release().await;
    if let Err(e) = &released {
        eprintln!(
            "memlock: releasing {:?} failed: {e} (it expires with its ttl)",
            args.key
        );
    }
    let code = match status {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            status
                .code()
                .map(|c| c as u8)
                .or_else(|| status.signal().map(|s| 128 + s as u8))
                .unwrap_or(1)
        }
        Err(e) => {
            eprintln!("memlock: waiting for the command failed: {e}");
            return Exit::Internal;
        }
    };
    event(
        out,
        json!({"event": "exited", "key": args.key, "code": code, "released": released.unwrap_or(false)}),
    );
    Exit::Code(code)
}
