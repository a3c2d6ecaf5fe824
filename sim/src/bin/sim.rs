//! `just sim`: runs generated cases (or replays one) and prints a one-line summary per run.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use memlock_host::Runtime;
use memlock_sim::runner::run_cases;
use memlock_sim::schedule::{self, Case, Mode, Shape};
use memlock_sim::world;

/// Deterministic simulation of memlock under faults.
#[derive(Parser)]
struct Args {
    /// Master seed; the same seed replays the same cases. Default: from the clock (printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Cases to run.
    #[arg(long, default_value_t = 200)]
    cases: u32,
    #[arg(long, default_value_t = 3)]
    clients: usize,
    /// Servers in every case. Default: each case draws 1, 2 or 3 (3, 4 or 5 in quorum mode).
    #[arg(long)]
    servers: Option<usize>,
    /// `shard` (each key on one server) or `quorum` (each lock on a majority of all servers).
    #[arg(long, default_value = "shard")]
    mode: Mode,
    /// Fault kinds to generate: `all`, `none`, or a comma list of
    /// partition,isolate,hold,delay,lose-reply,crash,reincarnate,evict,full,garbage,pause.
    #[arg(long, default_value = "all")]
    faults: String,
    /// Most faults per case.
    #[arg(long, default_value_t = 6)]
    max_faults: usize,
    /// Largest per-client clock drift generated (the lock's allowance is 0.01; half the clients
    /// drift close to this).
    #[arg(long, default_value_t = 0.0099)]
    max_drift: f64,
    /// Runs one case given in its text form (as printed for a failure) and prints its history.
    #[arg(long)]
    replay: Option<String>,
}

fn kinds(text: &str) -> Result<Vec<&'static str>, String> {
    match text {
        "all" => Ok(schedule::KINDS.to_vec()),
        "none" => Ok(Vec::new()),
        list => list
            .split(',')
            .map(|k| {
                schedule::KINDS
                    .iter()
                    .copied()
                    .find(|known| *known == k.trim())
                    .ok_or_else(|| format!("unknown fault kind {k:?}"))
            })
            .collect(),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match Runtime::shared() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sim: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(text) = &args.replay {
        return replay(text, runtime);
    }
    let kinds = match kinds(&args.faults) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("sim: {e}");
            return ExitCode::from(2);
        }
    };
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let servers = match (args.servers, args.mode) {
        (Some(n), _) => n..=n,
        (None, Mode::Shard) => 1..=3,
        (None, Mode::Quorum) => 3..=5,
    };
    if args.mode == Mode::Quorum && *servers.start() < 3 {
        eprintln!("sim: quorum mode needs at least 3 servers");
        return ExitCode::from(2);
    }
    let shape = Shape {
        clients: args.clients,
        servers: servers.clone(),
        mode: args.mode,
        kinds,
        max_faults: args.max_faults,
        max_drift: args.max_drift,
    };
    println!(
        "sim: seed={seed} cases={} clients={} servers={}..={} mode={} faults={}",
        args.cases,
        args.clients,
        servers.start(),
        servers.end(),
        args.mode.name(),
        args.faults
    );
    let progress = std::io::stdout()
        .is_terminal()
        .then(|| progress_bar(args.cases));
    let summary = run_cases(seed, args.cases, &shape, runtime, &mut |s| {
        if let Some(bar) = &progress {
            bar.set_position(u64::from(s.cases));
            bar.set_message(format!(
                "{} shrink runs, {:.0} sim-s/wall-s",
                s.shrink_runs,
                s.simulated.as_secs_f64() / s.wall.as_secs_f64().max(1e-9)
            ));
        }
    });
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let faults: Vec<String> = summary
        .faults
        .iter()
        .map(|(k, n)| format!("{k}={n}"))
        .collect();
    let excused: Vec<String> = summary
        .excused
        .iter()
        .map(|(k, n)| format!("{k}={n}"))
        .collect();
    println!(
        "sim: {} cases (+{} shrink runs), {:.1} simulated s in {:.1} wall s ({:.1} sim-s/wall-s), {} acquisitions, faults [{}], excused [{}], {} stale writes rejected by fencing, {} violations",
        summary.cases,
        summary.shrink_runs,
        summary.simulated.as_secs_f64(),
        summary.wall.as_secs_f64(),
        summary.simulated.as_secs_f64() / summary.wall.as_secs_f64().max(1e-9),
        summary.acquisitions,
        faults.join(" "),
        excused.join(", "),
        summary.stale_writes_rejected,
        if summary.failure.is_some() { 1 } else { 0 }
    );
    println!(
        "sim: acquires that succeeded, by the fault active when they began: {}",
        summary.success_rates()
    );
    match summary.failure {
        None => ExitCode::SUCCESS,
        Some((case, message)) => {
            let after = summary
                .first_failure_after
                .map(|d| format!(" (first failure after {:.1} s)", d.as_secs_f64()))
                .unwrap_or_default();
            println!("sim: FAILED{after} (shrunk case):\n  {message}\n  case: {case}");
            println!("sim: replay with: {}", schedule::replay_command(&case));
            ExitCode::FAILURE
        }
    }
}

fn replay(text: &str, runtime: &'static Runtime) -> ExitCode {
    let case: Case = match text.parse() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sim: cannot read the case: {e}");
            return ExitCode::from(2);
        }
    };
    let run = world::run(&case, runtime);
    for event in &run.events {
        println!("{event:?}");
    }
    println!(
        "sim: replay {} simulated s, {} acquisitions, history {:016x}, {} violations",
        run.simulated.as_secs_f64(),
        run.report.acquisitions,
        run.fingerprint,
        run.report.violations.len()
    );
    for v in &run.report.violations {
        println!("  violation: {v}");
    }
    if run.report.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Cases done of total, shrink runs and simulation speed, redrawn in place (terminals only).
fn progress_bar(cases: u32) -> indicatif::ProgressBar {
    // On stdout, which is what was checked to be a terminal.
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(u64::from(cases)),
        indicatif::ProgressDrawTarget::stdout(),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("sim: {pos}/{len} cases [{elapsed_precise}] {msg}")
    {
        bar.set_style(style);
    }
    bar
}
