//! `memlock-demo hold`: the command a demo worker runs under `memlock run`. It reports when it
//! starts and ends (with the fencing token `memlock run` put in its environment) on stdout, which
//! the demo reads through `memlock run`'s own stdout.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use serde_json::json;

#[derive(Args)]
pub struct HoldArgs {
    /// How long to hold, milliseconds.
    #[arg(long, default_value_t = 300)]
    ms: u64,
    /// Hold until killed.
    #[arg(long)]
    until_killed: bool,
}

/// Wall-clock microseconds: the demo compares reports of several processes on one machine.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

pub fn hold(args: HoldArgs) -> ExitCode {
    let token = std::env::var("MEMLOCK_FENCING_TOKEN").unwrap_or_default();
    println!(
        "{}",
        json!({"section": "entered", "at_us": now_us(), "fencing_token": token})
    );
    if args.until_killed {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    std::thread::sleep(Duration::from_millis(args.ms));
    // Reported before returning, so a report never claims less than the worker held.
    println!("{}", json!({"section": "leaving", "at_us": now_us()}));
    ExitCode::SUCCESS
}
