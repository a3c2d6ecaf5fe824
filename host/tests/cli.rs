//! The `memlock` binary against a real memcached: exit codes, handles across processes, and
//! `memlock run` (exit status, renewal past several ttls, stopping the command when the lock is
//! deleted under it).

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::time::{Duration, Instant};

use memlock_tests::Memcached;
use memlock_tests::raw::Raw;

fn memlock(server: &Memcached, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memlock"))
        .args(["--server", &format!("127.0.0.1:{}", server.port())])
        .args(args)
        .output()
        .expect("run memlock")
}

/// `memlock run ARGS` in the background, stdout discarded.
fn spawn_run(server: &Memcached, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_memlock"))
        .args(["--server", &format!("127.0.0.1:{}", server.port()), "run"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn memlock run")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn acquire_busy_release_with_exit_codes() {
    let server = Memcached::start();
    let first = memlock(&server, &["try-acquire", "job", "--ttl", "30000"]);
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    let handle = stdout(&first);
    assert!(handle.starts_with("ml1."), "{handle}");

    let busy = memlock(&server, &["try-acquire", "job"]);
    assert_eq!(busy.status.code(), Some(1));
    let timeout = memlock(&server, &["--json", "acquire", "job", "--timeout", "300"]);
    assert_eq!(timeout.status.code(), Some(3));
    assert!(
        stdout(&timeout).contains("\"code\":\"LOCK_TIMEOUT\""),
        "{}",
        stdout(&timeout)
    );

    let extended = memlock(&server, &["extend", &handle, "--ttl", "60000"]);
    assert_eq!(extended.status.code(), Some(0));
    assert!(Raw::connect(server.port()).get(b"job").expect("held").ttl > 50);

    assert_eq!(
        memlock(&server, &["release", &handle]).status.code(),
        Some(0),
        "released by another process"
    );
    assert_eq!(
        memlock(&server, &["release", &handle]).status.code(),
        Some(1),
        "not held any more"
    );
    assert_eq!(
        memlock(&server, &["try-acquire", ""]).status.code(),
        Some(4),
        "invalid key"
    );
    assert_eq!(
        memlock(&server, &["release", "garbage"]).status.code(),
        Some(4),
        "invalid handle"
    );
    assert_eq!(
        memlock(
            &server,
            &["--set", "options.timeout=-1", "try-acquire", "k"]
        )
        .status
        .code(),
        Some(4)
    );
}

#[test]
fn unreachable_server_exits_5() {
    let mut server = Memcached::start();
    server.stop();
    let out = memlock(
        &server,
        &["--set", "options.reconnect=300", "try-acquire", "k"],
    );
    assert_eq!(out.status.code(), Some(5), "{out:?}");
}

#[test]
fn run_propagates_the_exit_status_and_exports_the_lease() {
    let server = Memcached::start();
    let out = memlock(
        &server,
        &[
            "run",
            "job",
            "--",
            "sh",
            "-c",
            "test -n \"$MEMLOCK_FENCING_TOKEN\" && test -n \"$MEMLOCK_LEASE\" && exit 42",
        ],
    );
    assert_eq!(out.status.code(), Some(42), "{out:?}");
    assert!(
        Raw::connect(server.port()).get(b"job").is_none(),
        "released after the command"
    );
    let missing = memlock(&server, &["run", "job", "--", "/nonexistent/command"]);
    assert_eq!(missing.status.code(), Some(127));
    let no_time_to_renew = memlock(
        &server,
        &[
            "run", "job", "--ttl", "900", "--grace", "5000", "--", "true",
        ],
    );
    assert_eq!(
        no_time_to_renew.status.code(),
        Some(4),
        "{no_time_to_renew:?}"
    );
    // README: a --ttl below 250 ms is refused; 250 itself is accepted.
    for (ttl, exit) in [("150", 4), ("249", 4), ("250", 0)] {
        let run = memlock(&server, &["run", "job", "--ttl", ttl, "--", "true"]);
        assert_eq!(run.status.code(), Some(exit), "--ttl {ttl}: {run:?}");
    }
}

#[test]
fn run_renews_past_several_ttls() {
    let server = Memcached::start();
    // A 600 ms lease held by a command that runs for 2.4 s: four ttls.
    let mut child = spawn_run(&server, &["long", "--ttl", "600", "--", "sleep", "2.4"]);
    let mut raw = Raw::connect(server.port());
    let mut cas_seen = Vec::new();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if let Some(item) = raw.get(b"long")
            && cas_seen.last() != Some(&item.cas)
        {
            cas_seen.push(item.cas);
        }
        std::thread::yield_now();
    };
    assert_eq!(status.code(), Some(0), "the lease was never lost");
    assert!(
        cas_seen.len() >= 4,
        "renewed at least three times: CAS values {cas_seen:?}"
    );
    assert!(raw.get(b"long").is_none(), "released at exit");
}

#[test]
fn run_stops_the_command_when_the_lock_is_deleted_under_it() {
    let server = Memcached::start();
    let mut child = spawn_run(
        &server,
        &[
            "victim", "--ttl", "900", "--grace", "200", "--", "sleep", "600",
        ],
    );
    let mut raw = Raw::connect(server.port());
    let deadline = Instant::now() + Duration::from_secs(10);
    while raw.get(b"victim").is_none() {
        assert!(Instant::now() < deadline, "memlock run never took the lock");
    }
    assert_eq!(raw.delete(b"victim"), "HD");
    let status = child.wait().expect("memlock run exits");
    assert_eq!(status.code(), Some(7), "lease lost: distinct exit code");
}

#[test]
fn a_malformed_handle_is_exit_4_with_one_json_error() {
    let server = Memcached::start();
    let valid = stdout(&memlock(&server, &["try-acquire", "job"]));
    // The key field `a`, a two-byte character, `0`: slicing it two bytes at a time cut the
    // character and panicked.
    let rest = valid.splitn(3, '.').nth(2).expect("a handle has fields");
    for bad in [
        format!("ml1.a\u{e9}0.{rest}"),
        format!("ml1.\u{e9}.{rest}"),
        "ml1.\u{1F512}".to_string(),
        format!("{valid}\u{e9}"),
    ] {
        let out = memlock(&server, &["--json", "release", &bad]);
        assert_eq!(out.status.code(), Some(4), "{bad}: {out:?}");
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "one JSON object: {text}");
        let error: serde_json::Value = serde_json::from_str(lines[0]).expect("JSON");
        assert_eq!(error["status"], "error", "{text}");
        assert!(
            String::from_utf8_lossy(&out.stderr).is_empty(),
            "no backtrace: {out:?}"
        );
    }
}

/// `memlock --json run ARGS` in the background; its events (JSON lines on stderr) are read with
/// [`next_event`].
fn spawn_run_json(
    server: &Memcached,
    args: &[&str],
) -> (Child, std::io::Lines<BufReader<ChildStderr>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_memlock"))
        .args([
            "--server",
            &format!("127.0.0.1:{}", server.port()),
            "--json",
            "run",
        ])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn memlock run");
    let events = BufReader::new(child.stderr.take().expect("stderr")).lines();
    (child, events)
}

/// The next event named `name`, and when it arrived.
fn next_event(
    events: &mut std::io::Lines<BufReader<ChildStderr>>,
    name: &str,
) -> (serde_json::Value, Instant) {
    for line in events.by_ref() {
        let line = line.expect("read stderr");
        if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
            && event["event"] == name
        {
            return (event, Instant::now());
        }
    }
    panic!("memlock run ended without a {name:?} event");
}

#[test]
fn run_kills_the_command_before_the_lease_it_cannot_renew_expires() {
    let server = Memcached::start();
    // The command ignores SIGTERM: only the SIGKILL ends it.
    let (mut child, mut events) = spawn_run_json(
        &server,
        &[
            "stalled",
            "--ttl",
            "2000",
            "--grace",
            "500",
            "--",
            "sh",
            "-c",
            "trap '' TERM; exec sleep 30",
        ],
    );
    let (acquired, _) = next_event(&mut events, "acquired");
    server.pause();
    // On the machine's monotonic clock, which this process reads too.
    let validity_end = acquired["valid_until_monotonic_ns"]
        .as_u64()
        .expect("valid_until_monotonic_ns");
    let status = child.wait().expect("memlock run exits");
    // memlock exits only after it has reaped the command.
    let ended = monotonic_ns();
    server.resume();
    assert_eq!(status.code(), Some(7), "the lease could not be renewed");
    assert!(
        ended < validity_end,
        "the command was still running {:?} after its lease's validity ended",
        Duration::from_nanos(ended - validity_end)
    );
}

#[test]
fn a_sigterm_right_after_the_lock_is_taken_reaches_the_command() {
    let server = Memcached::start();
    let (mut child, mut events) = spawn_run_json(&server, &["job", "--", "sleep", "30"]);
    next_event(&mut events, "acquired");
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("memlock run exits");
    assert_eq!(
        status.code(),
        Some(128 + libc::SIGTERM),
        "memlock forwarded SIGTERM to the command and exited with its status: {status:?}"
    );
    assert!(
        Raw::connect(server.port()).get(b"job").is_none(),
        "released after the command ended"
    );
}

#[test]
fn killing_memlock_ends_the_command() {
    let server = Memcached::start();
    let pid_file = std::env::temp_dir().join(format!("memlock-run-{}.pid", std::process::id()));
    let _ = std::fs::remove_file(&pid_file);
    let script = format!("echo $$ > {}; exec sleep 30", pid_file.display());
    let (mut child, mut events) = spawn_run_json(&server, &["job", "--", "sh", "-c", &script]);
    next_event(&mut events, "acquired");
    let deadline = Instant::now() + Duration::from_secs(10);
    let command_pid: i32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(5));
    };
    child.kill().expect("SIGKILL memlock");
    child.wait().expect("reap memlock");
    let deadline = Instant::now() + Duration::from_secs(5);
    while running(command_pid) {
        assert!(
            Instant::now() < deadline,
            "the command (pid {command_pid}) runs on without the lock after memlock died"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = std::fs::remove_file(&pid_file);
}

/// True while `pid` exists and is not a zombie.
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}

/// `CLOCK_MONOTONIC` in ns, the clock `memlock run` reports deadlines on.
fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    (now.tv_sec as u64) * 1_000_000_000 + now.tv_nsec as u64
}

/// The CLI reads the password from a file or `$MEMLOCK_PASSWORD`, refuses it on the command
/// line, and never prints it, not even with `MEMLOCK_LOG=trace`.
#[test]
fn the_cli_never_shows_the_password() {
    const USER: &str = "alice";
    const PASSWORD: &str = "s3cret-Pa55word";
    let auth = memlock_tests::memcached::auth_file(USER, PASSWORD);
    let server = Memcached::start_with(&["-Y", auth.to_str().expect("utf-8")]);
    let dir = auth.parent().expect("a directory").to_owned();
    let binary = env!("CARGO_BIN_EXE_memlock");
    let address = format!("127.0.0.1:{}", server.port());
    let good = dir.join("password");
    std::fs::write(&good, format!("{PASSWORD}\n")).expect("password file");
    let bad = dir.join("wrong");
    std::fs::write(&bad, "wrong-password\n").expect("password file");
    let run = |args: &[&str], env_password: Option<&str>| {
        let mut command = Command::new(binary);
        command
            .args([
                "--server",
                &address,
                "--json",
                "--set",
                &format!("credential.username={USER}"),
            ])
            .args(args)
            .env("MEMLOCK_LOG", "trace")
            .env_remove("MEMLOCK_PASSWORD");
        if let Some(p) = env_password {
            command.env("MEMLOCK_PASSWORD", p);
        }
        let out = command.output().expect("run memlock");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    let good_file = good.to_str().expect("utf-8");
    let bad_file = bad.to_str().expect("utf-8");
    let (code, text) = run(
        &["--password-file", good_file, "try-acquire", "cli-key"],
        None,
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains(PASSWORD), "the password shows: {text}");
    let (code, text) = run(&["try-acquire", "cli-key-2"], Some(PASSWORD));
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains(PASSWORD), "the password shows: {text}");
    let (code, text) = run(
        &["--password-file", bad_file, "try-acquire", "cli-key-3"],
        None,
    );
    assert_eq!(
        code,
        Some(4),
        "refused credentials are a configuration error: {text}"
    );
    assert!(text.contains("UNAUTHORIZED"), "{text}");
    assert!(
        !text.contains("wrong-password"),
        "the password shows: {text}"
    );
    let (code, text) = run(
        &[
            "--set",
            "credential.password=on-the-command-line",
            "try-acquire",
            "k",
        ],
        None,
    );
    assert_ne!(code, Some(0));
    assert!(text.contains("--password-file"), "{text}");
}

/// The CLI in quorum mode: `memlock run` holds a key across three servers while its command
/// runs, a second `try-acquire` finds it busy meanwhile, and the key is free after.
#[test]
fn memlock_run_in_quorum_mode() {
    let servers: Vec<Memcached> = (0..3).map(|_| Memcached::start()).collect();
    let list = servers
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port()))
        .collect::<Vec<_>>()
        .join(",");
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_memlock"))
            .args(["--server", &list])
            .args([
                "--set",
                "options.mode=quorum",
                "--set",
                "options.max_lease=2000",
            ])
            .args(args)
            .output()
            .expect("run memlock")
    };
    // Fresh processes count once they have run max_lease (plus memcached's 3 s of uptime
    // running ahead): a blocking acquire waits that out, at most 15 s.
    let probe = cli(&[
        "acquire",
        "quorum-probe",
        "--ttl",
        "1000",
        "--timeout",
        "15000",
    ]);
    assert_eq!(probe.status.code(), Some(0), "never counted: {probe:?}");
    // The command checks from inside that the key is held (a second client is refused).
    let binary = env!("CARGO_BIN_EXE_memlock");
    let inner = format!(
        "{binary} --server {list} --set options.mode=quorum --set options.max_lease=2000 try-acquire job --ttl 1000; test $? -eq 1"
    );
    let run = cli(&["run", "job", "--ttl", "1500", "--", "sh", "-c", &inner]);
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    let after = cli(&["try-acquire", "job", "--ttl", "1000"]);
    assert_eq!(after.status.code(), Some(0), "free after run: {after:?}");
}
