//! `just demo` end to end: the demo binary drives the real `memlock` binary against a memcached
//! it starts itself, and passes its own checks.

use std::process::Command;

fn demo(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_memlock-demo"))
        .env_remove("MEMLOCK_SERVERS")
        .env_remove("MEMLOCK_CONFIG")
        .args(args)
        .output()
        .expect("run memlock-demo")
}

#[test]
fn the_demo_runs_both_rounds_and_passes_its_checks() {
    let output = demo(&["--workers", "3", "--ttl", "1000", "--hold", "50", "--json"]);
    let timeline = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{timeline}");
    for expected in [
        "round 1: 3 hand-offs, no overlapping holders",
        "busy — the dead holder's lease is still there",
        "worker 101 got the key",
        "demo done",
    ] {
        assert!(
            timeline.contains(expected),
            "{expected:?} missing:\n{timeline}"
        );
    }
    for line in timeline.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("--json prints JSON lines");
    }
}

#[test]
fn a_missing_memlock_binary_is_named_with_the_command_that_builds_it() {
    let output = demo(&[
        "--memlock",
        "/nonexistent/memlock",
        "--server",
        "127.0.0.1:1",
    ]);
    let timeline = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{timeline}");
    assert!(
        timeline.contains("no memlock binary at /nonexistent/memlock: build it"),
        "{timeline}"
    );
}
