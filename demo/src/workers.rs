//! Worker processes: each is `memlock --json run KEY -- memlock-demo hold …`, the product CLI
//! exactly as a user runs it. Two reader threads per worker turn its stdout (the critical
//! section's reports, and memlock's own JSON outcome) and its stderr (`memlock run`'s JSON
//! events and any message) into [`Report`]s on one channel.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::Sender;
use std::time::Duration;

use serde_json::Value;

use crate::critical_section::now_us;

/// The `memlock` binary and the global arguments every call gets (`--server …`).
pub struct Memlock {
    exe: PathBuf,
    global: Vec<String>,
}

/// What a worker said, tagged with who and when it was read.
#[derive(Debug)]
pub struct Report {
    pub worker: u32,
    pub at_us: u64,
    pub said: Said,
}

#[derive(Debug)]
pub enum Said {
    /// A JSON line: a critical-section report, a `memlock run` event, or memlock's outcome.
    Json(Value),
    /// Any other line (memlock's messages on stderr).
    Text(String),
    /// One of the two pipes closed; after both, the worker and its command are gone.
    Closed,
}

/// How long a worker's command holds the key.
pub enum Hold {
    For(Duration),
    UntilKilled,
}

impl Memlock {
    /// `explicit`, or the `memlock` built beside this binary (`target/debug/`).
    pub fn locate(explicit: Option<PathBuf>, global: Vec<String>) -> Result<Memlock, String> {
        let exe = match explicit {
            Some(path) => path,
            None => std::env::current_exe()
                .map_err(|e| format!("cannot find this binary's directory: {e}"))?
                .with_file_name("memlock"),
        };
        if !exe.is_file() {
            return Err(format!(
                "no memlock binary at {}: build it (`cargo build -p memlock-host`; `just demo` does) or pass --memlock PATH",
                exe.display()
            ));
        }
        Ok(Memlock { exe, global })
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.exe);
        command.args(&self.global);
        command
    }

    /// `memlock --json try-acquire KEY`.
    pub fn try_acquire(&self, key: &str, ttl_ms: i64) -> std::io::Result<Output> {
        self.command()
            .args(["--json", "try-acquire", key, "--ttl", &ttl_ms.to_string()])
            .output()
    }

    /// Starts worker `worker`: `memlock --json run KEY --ttl T --timeout 60000 -- <this binary>
    /// hold …`.
    pub fn start_worker(
        &self,
        worker: u32,
        key: &str,
        ttl_ms: i64,
        hold: &Hold,
        reports: &Sender<Report>,
    ) -> std::io::Result<Child> {
        let demo = std::env::current_exe()?;
        let mut command = self.command();
        command
            .args(["--json", "run", key, "--ttl", &ttl_ms.to_string()])
            .args(["--timeout", "60000", "--"])
            .arg(&demo)
            .arg("hold");
        match hold {
            Hold::For(duration) => command.args(["--ms", &duration.as_millis().to_string()]),
            Hold::UntilKilled => command.arg("--until-killed"),
        };
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(stdout) = child.stdout.take() {
            forward(worker, stdout, reports.clone());
        }
        if let Some(stderr) = child.stderr.take() {
            forward(worker, stderr, reports.clone());
        }
        Ok(child)
    }

    pub fn path(&self) -> &Path {
        &self.exe
    }
}

fn forward(worker: u32, pipe: impl Read + Send + 'static, reports: Sender<Report>) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let said = match serde_json::from_str::<Value>(&line) {
                Ok(value) if value.is_object() => Said::Json(value),
                _ => Said::Text(line),
            };
            let report = Report {
                worker,
                at_us: now_us(),
                said,
            };
            if reports.send(report).is_err() {
                return;
            }
        }
        let _ = reports.send(Report {
            worker,
            at_us: now_us(),
            said: Said::Closed,
        });
    });
}

/// A worker's exit status, as a sentence when it is not success.
pub fn failure(worker: u32, status: std::io::Result<ExitStatus>) -> Option<String> {
    match status {
        Ok(status) if status.success() => None,
        Ok(status) => Some(format!("worker {worker}'s memlock exited with {status}")),
        Err(e) => Some(format!("worker {worker}: waiting for it failed: {e}")),
    }
}
