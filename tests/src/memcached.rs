//! A real memcached process owned by a test: started on a free loopback port, stopped on drop.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Memcached {
    child: Option<Child>,
    port: u16,
    args: Vec<String>,
    /// Runs as pid 1 of a PID namespace of its own (`unshare`), as in a container.
    as_pid_1: bool,
}

const STARTUP_LIMIT: Duration = Duration::from_secs(10);

fn binary() -> String {
    match installed() {
        Ok(binary) => binary,
        Err(e) => panic!("{e}"),
    }
}

/// The memcached binary to run, or what to do about its absence.
pub fn installed() -> Result<String, String> {
    for candidate in [
        "memcached",
        "/usr/bin/memcached",
        "/usr/local/bin/memcached",
    ] {
        if Command::new(candidate)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
        {
            return Ok(candidate.to_string());
        }
    }
    Err("memcached is not installed: run `just setup` (or `apt-get install memcached`)".into())
}

/// An auth file for memcached's `-Y` (`user:password`), in a directory of its own under the
/// system's temp dir.
pub fn auth_file(username: &str, password: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("memlock-auth-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    let file = dir.join("auth");
    std::fs::write(&file, format!("{username}:{password}\n")).expect("write the auth file");
    file
}

/// Whether process `pid` holds the socket listening on 127.0.0.1:`port` (Linux: the socket's
/// inode from /proc/net/tcp among the process's open files).
fn owns_listener(pid: i32, port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let local = format!("0100007F:{port:04X}");
    let inode = table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A"))
            .then(|| fields.get(9).map(|i| format!("socket:[{i}]")))
            .flatten()
    });
    let Some(inode) = inode else {
        return false;
    };
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| target.to_string_lossy() == inode)
    })
}

/// A loopback port free right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

impl Memcached {
    /// memcached with 64 MiB, on a free port.
    pub fn start() -> Memcached {
        Memcached::start_with(&[])
    }

    /// memcached with extra arguments (`-m 2`, `-M`, ...).
    pub fn start_with(args: &[&str]) -> Memcached {
        Memcached::launch(args, false)
    }

    /// memcached as pid 1 of its own PID namespace, as in a container: every start of it reports
    /// pid 1, so a restart within the same second has the same `stats` identity. Needs
    /// `unshare` (util-linux) and the right to create PID namespaces (root).
    pub fn start_as_pid_1() -> Memcached {
        Memcached::launch(&[], true)
    }

    fn launch(args: &[&str], as_pid_1: bool) -> Memcached {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        for _ in 0..20 {
            let mut server = Memcached {
                child: None,
                port: free_port(),
                args: args.clone(),
                as_pid_1,
            };
            if server.spawn() {
                return server;
            }
        }
        panic!("could not start memcached on a free port after 20 attempts");
    }

    /// Starts the process on `self.port`; `false` if it exited (port taken).
    fn spawn(&mut self) -> bool {
        let mut command = if self.as_pid_1 {
            // --kill-child: killing `unshare` kills memcached (pid 1) and its namespace with it.
            let mut unshare = Command::new("unshare");
            unshare.args(["--pid", "--fork", "--kill-child", &binary()]);
            unshare
        } else {
            Command::new(binary())
        };
        let child = command
            .args([
                "-l",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "0",
                "-t",
                "1",
            ])
            .args(&self.args)
            .args(if running_as_root() {
                &["-u", "root"][..]
            } else {
                &[][..]
            })
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn memcached (with `unshare` for start_as_pid_1: util-linux)");
        self.child = Some(child);
        let deadline = Instant::now() + STARTUP_LIMIT;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                self.child = None;
                if stderr.contains("bind") || stderr.contains("in use") {
                    return false;
                }
                panic!("memcached {:?} exited with {status}: {stderr}", self.args);
            }
            // Something accepting on the port is not enough: between a stop and a restart,
            // another test's memcached may have been given this port. Only our own child counts;
            // if it is someone else's, ours exits with a bind error above.
            let ours = if self.as_pid_1 { 1 } else { self.pid() };
            // A server that requires TLS or authentication answers no plaintext `stats`: there,
            // the listening socket is found among our child's open files instead.
            let secured = self.args.iter().any(|a| a == "-Y" || a == "-Z");
            let owned = if secured {
                owns_listener(ours, self.port)
            } else {
                self.listening_pid() == Some(ours)
            };
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() && owned {
                return true;
            }
            std::thread::yield_now();
        }
        panic!(
            "memcached on port {} did not accept connections within {STARTUP_LIMIT:?}",
            self.port
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn uri(&self) -> String {
        format!("memcached://127.0.0.1:{}", self.port)
    }

    /// ConfigParams pointing at this server.
    pub fn config(&self) -> Vec<(String, String)> {
        vec![("connection.uri".to_string(), self.uri())]
    }

    /// What `stats` says identifies the process: (pid, start time = `time` − `uptime`).
    pub fn stats_identity(&self) -> (u64, u64) {
        let stats = crate::raw::Raw::connect(self.port).stats();
        let number = |name: &str| -> u64 {
            stats
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or_else(|| panic!("stats has no {name}"))
        };
        (number("pid"), number("time") - number("uptime"))
    }

    /// The pid the server on `self.port` reports in `stats`.
    /// `None` when nothing answers, or the server goes away mid-reply (one still shutting down).
    fn listening_pid(&self) -> Option<i32> {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.write_all(b"stats\r\n").ok()?;
        let mut reply = Vec::new();
        let mut chunk = [0u8; 4096];
        while !reply.ends_with(b"END\r\n") {
            let n = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
            reply.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&reply)
            .lines()
            .find_map(|line| line.strip_prefix("STAT pid "))
            .and_then(|pid| pid.trim().parse().ok())
    }

    fn pid(&self) -> i32 {
        self.child
            .as_ref()
            .map(|c| c.id() as i32)
            .expect("memcached is running")
    }

    /// Kills the process (all items and CAS counters are lost).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.as_pid_1 {
            // `unshare` is gone; its memcached (pid 1 of the namespace) dies a moment later. Every
            // start reports pid 1, so a restart must not mistake the dying one for the new one.
            let deadline = Instant::now() + STARTUP_LIMIT;
            while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                assert!(
                    Instant::now() < deadline,
                    "memcached on port {} never stopped",
                    self.port
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Stops and starts memcached on the same port: a server restart.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + STARTUP_LIMIT;
        while !self.spawn() {
            assert!(
                Instant::now() < deadline,
                "memcached did not restart on port {}",
                self.port
            );
        }
    }

    /// SIGSTOP: the server accepts bytes into its socket buffers but answers nothing.
    ///
    /// kill(2) only queues the signal, so this returns once every thread of the server is
    /// seen stopped: a request sent afterwards cannot be answered.
    pub fn pause(&self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid(), libc::SIGSTOP) };
        self.wait_until_stopped(true);
    }

    /// SIGCONT: the server resumes and processes what it buffered.
    pub fn resume(&self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid(), libc::SIGCONT) };
        self.wait_until_stopped(false);
    }

    /// Polls /proc until every thread's state is (or is no longer) `T`, bounded.
    fn wait_until_stopped(&self, stopped: bool) {
        let deadline = Instant::now() + STARTUP_LIMIT;
        while all_threads_stopped(self.pid()) != stopped {
            assert!(
                Instant::now() < deadline,
                "memcached pid {} never became {}",
                self.pid(),
                if stopped { "stopped" } else { "running" }
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// True when every thread of `pid` is in state `T` (stopped by a signal).
fn all_threads_stopped(pid: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let mut any = false;
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // The state follows the parenthesised command name, which may itself contain spaces.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        if state != Some("T") {
            return false;
        }
        any = true;
    }
    any
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_ref() {
            // A paused process must be resumed to die promptly on SIGKILL's reaping.
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
        }
        self.stop();
    }
}
