//! The simulation as part of `just test`: a bounded run of generated fault schedules must find no
//! violation, and one seed must replay to the same history byte for byte.

use memlock_host::Runtime;
use memlock_sim::runner::run_cases;
use memlock_sim::schedule::{Case, KINDS, Mode, Shape, replay_command};
use memlock_sim::world;

fn runtime() -> &'static Runtime {
    Runtime::shared().expect("load the memlock component")
}

/// `cases` generated cases of every fault kind, 3 clients, from `seed`: no violation, over a
/// thousand acquisitions, every fault kind injected.
fn bounded_run(seed: u64, cases: u32, servers: std::ops::RangeInclusive<usize>, mode: Mode) {
    let shape = Shape {
        clients: 3,
        servers,
        mode,
        kinds: KINDS.to_vec(),
        max_faults: 6,
        max_drift: 0.0099,
    };
    let summary = run_cases(seed, cases, &shape, runtime(), &mut |_| {});
    println!(
        "sim {}: {} cases, {:.1} simulated s in {:.1} wall s, {} acquisitions, faults {:?}, excused {:?}, success {}",
        mode.name(),
        summary.cases,
        summary.simulated.as_secs_f64(),
        summary.wall.as_secs_f64(),
        summary.acquisitions,
        summary.faults,
        summary.excused,
        summary.success_rates()
    );
    if let Some((case, message)) = summary.failure {
        panic!("{message}\nreplay: {}", replay_command(&case));
    }
    assert_eq!(summary.cases, cases);
    assert!(
        summary.acquisitions > 1000,
        "the workload acquired: {}",
        summary.acquisitions
    );
    assert!(
        KINDS
            .iter()
            .all(|k| summary.faults.get(k).copied().unwrap_or(0) > 0),
        "every fault kind injected"
    );
}

#[test]
fn bounded_run_finds_no_violation() {
    bounded_run(20261126, 200, 1..=3, Mode::Shard);
}

/// Quorum mode over 3 to 5 servers under every fault kind: no violation, and the restart rule
/// does not stop the cluster from granting locks.
#[test]
fn quorum_bounded_run_finds_no_violation() {
    bounded_run(20261130, 150, 3..=5, Mode::Quorum);
}

/// One of three servers is down (crashed, then restarted and not yet counted) for most of the
/// run: the other two are a majority, and clients keep acquiring at about the rate they do with
/// every server up.
#[test]
fn quorum_with_a_minority_down_keeps_granting() {
    let case: Case =
        "seed=11;clients=3;servers=3;mode=quorum;drift=0,0,0;faults=crash:mc2@300+9000"
            .parse()
            .expect("case");
    let run = world::run(&case, runtime());
    assert_eq!(run.report.violations, Vec::<String>::new());
    let (tried, won) = run
        .report
        .attempts
        .get("crash")
        .copied()
        .unwrap_or_default();
    let (tried_up, won_up) = run.report.attempts.get("none").copied().unwrap_or_default();
    println!("with mc2 down: {won}/{tried}; all up: {won_up}/{tried_up}");
    assert!(tried >= 10, "acquires while mc2 was down: {tried}");
    assert!(
        won * tried_up * 2 >= won_up * tried,
        "with a minority down {won}/{tried} succeeded, against {won_up}/{tried_up} with all up"
    );
}

#[test]
fn same_case_same_history() {
    let case: Case = "seed=7;clients=3;servers=2;drift=0.003,-0.002,0;faults=partition:c1:mc0@800+900,lose-reply:mc1@1500+1,crash:mc0@2500+700,hold:c2:mc1@3000+600,garbage:mc1@4000+300,evict:mc0@4500+1,pause:c0@5000+1500,delay:mc1@6000+800"
        .parse()
        .expect("case");
    let first = world::run(&case, runtime());
    let second = world::run(&case, runtime());
    assert!(first.report.acquisitions > 0);
    assert_eq!(first.events, second.events, "same seed, same history");
    assert_eq!(first.fingerprint, second.fingerprint);
    let other = world::run(&Case { seed: 8, ..case }, runtime());
    assert_ne!(
        first.fingerprint, other.fingerprint,
        "another seed, another history"
    );
}

#[test]
fn same_quorum_case_same_history() {
    let case: Case = "seed=9;clients=3;servers=3;mode=quorum;drift=0.003,-0.002,0;faults=isolate:mc0@800+900,crash:mc1@1500+700,hold:c2:mc2@3000+600,pause:c0@5000+1500"
        .parse()
        .expect("case");
    let first = world::run(&case, runtime());
    let second = world::run(&case, runtime());
    assert!(first.report.acquisitions > 0);
    assert_eq!(first.events, second.events, "same seed, same history");
}

/// The replay command a failing run prints works when pasted into a shell, through `just`:
/// the case contains `;`, which a shell would otherwise split at.
#[test]
fn the_printed_replay_command_runs_as_printed() {
    let case: Case = "seed=5;clients=2;servers=2;drift=0,0.001;faults=partition:c1:mc0@100+200,crash:mc1@300+100"
        .parse()
        .expect("case");
    let command = replay_command(&case);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("sim/ sits in the workspace root");
    let out = std::process::Command::new("bash")
        .args(["-c", &command])
        .current_dir(root)
        .output()
        .expect("run bash (and `just`: `pip install rust-just` or `cargo install just`)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{command} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("sim: replay") && stdout.contains("0 violations"),
        "{stdout}"
    );
}
