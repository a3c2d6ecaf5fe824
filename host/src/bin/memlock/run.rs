//! `memlock run KEY -- COMMAND…`: run a command while holding a lock, like `flock` across machines.
//!
//! Acquire (waiting up to `--timeout`, or forever with `--wait`), start the command with the lease
//! in its environment, renew the lease while it runs ([`memlock_host::LeaseGuard`]), and release it
//! when the command exits, exiting with the command's status. If the lease is lost, the command is
//! stopped — SIGTERM, then SIGKILL after `--grace` — and `memlock` exits with 7.
//!
//! Signals: SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2 sent to `memlock` are forwarded to the command.
//! SIGINT and SIGQUIT are forwarded too unless stdin is a terminal: there the terminal already
//! delivers them to the command, which shares `memlock`'s process group.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use tokio::signal::unix::{SignalKind, signal};

use crate::output::{Exit, Output};
use crate::settings::Pairs;

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
    /// After the lease is lost: milliseconds between SIGTERM and SIGKILL.
    #[arg(long, default_value_t = 5_000)]
    grace: u64,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

fn event(out: &Output, value: serde_json::Value) {
    if out.json {
        eprintln!("{value}");
    }
}

pub async fn run(args: RunArgs, config: Pairs, cid: Option<&str>, out: &Output) -> Exit {
    let lock = match crate::open(&config, cid).await {
        Ok(lock) => Arc::new(lock),
        Err(e) => return out.error(&e),
    };
    let timeout = if args.wait {
        memlock_host::lock::MAX_TIMEOUT_MS
    } else {
        args.timeout
    };
    let started = Instant::now();
    let acquired = crate::with_progress(
        &args.key,
        out.json,
        lock.acquire(cid, args.key.as_bytes(), args.ttl, timeout),
    )
    .await;
    let lease = match acquired {
        Ok(lease) => lease,
        Err(e) if e.code() == Some("LOCK_TIMEOUT") && timeout == 0 => return out.busy(&args.key),
        Err(e) => return out.error(&e),
    };
    event(
        out,
        json!({"event": "acquired", "key": args.key, "lease": lease.handle(), "fencing_token": lease.fencing_token.to_string(), "waited_ms": started.elapsed().as_millis() as u64}),
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
    let mut child = match tokio::process::Command::new(&args.command[0])
        .args(&args.command[1..])
        .env("MEMLOCK_KEY", &args.key)
        .env("MEMLOCK_LEASE", lease.handle())
        .env("MEMLOCK_FENCING_TOKEN", lease.fencing_token.to_string())
        .env("MEMLOCK_TTL_MS", args.ttl.to_string())
        .spawn()
    {
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
    let forward_interactive = !std::io::stdin().is_terminal();
    // Forward signals while the command runs; the tasks end with this process.
    for (kind, number, forward) in [
        (SignalKind::terminate(), libc::SIGTERM, true),
        (SignalKind::hangup(), libc::SIGHUP, true),
        (SignalKind::user_defined1(), libc::SIGUSR1, true),
        (SignalKind::user_defined2(), libc::SIGUSR2, true),
        (SignalKind::interrupt(), libc::SIGINT, forward_interactive),
        (SignalKind::quit(), libc::SIGQUIT, forward_interactive),
    ] {
        let (Ok(mut stream), Some(pid)) = (signal(kind), pid) else {
            continue;
        };
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                if forward {
                    // SAFETY: kill(2) on our own child's pid.
                    unsafe { libc::kill(pid, number) };
                }
            }
        });
    }
    let status = tokio::select! {
        status = child.wait() => status,
        lost = guard.lost() => {
            eprintln!("memlock: lost the lock on {:?}: {lost}; stopping the command", args.key);
            event(out, json!({"event": "lost", "key": args.key, "reason": lost.to_string()}));
            stop(&mut child, pid, Duration::from_millis(args.grace)).await;
            return Exit::LeaseLost;
        }
    };
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

/// SIGTERM, then SIGKILL after `grace`.
async fn stop(child: &mut tokio::process::Child, pid: Option<i32>, grace: Duration) {
    if let Some(pid) = pid {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}
