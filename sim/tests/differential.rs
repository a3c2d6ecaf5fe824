//! The fake memcached against a real one: proptest generates command scripts (meta and classic,
//! hostile flags and keys included), both servers run them, and their replies must match once
//! timing-dependent fields are normalised (CAS values by order of first appearance, remaining
//! ttls by sign). A mismatch prints the script and both replies.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use memlock_sim::fake::serve::{ServerConfig, ServerHandle, serve_tokio};
use memlock_tests::Memcached;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Cmd {
    MetaSet {
        key: usize,
        b64: bool,
        value: String,
        ttl: i64,
        mode: &'static str,
        cas: Option<usize>,
        flags: Vec<&'static str>,
    },
    MetaGet {
        key: usize,
        b64: bool,
        flags: Vec<&'static str>,
        touch: Option<i64>,
    },
    MetaDelete {
        key: usize,
        b64: bool,
        cas: Option<usize>,
        flags: Vec<&'static str>,
    },
    Classic {
        verb: &'static str,
        key: usize,
        value: String,
        ttl: i64,
    },
    ClassicCas {
        key: usize,
        value: String,
        cas: usize,
    },
    Get {
        verb: &'static str,
        keys: Vec<usize>,
    },
    Delete {
        key: usize,
        legacy_zero: bool,
    },
    Touch {
        key: usize,
        ttl: i64,
    },
    Raw(&'static str),
}

const KEYS: usize = 4;

fn ttl() -> impl Strategy<Value = i64> {
    prop_oneof![Just(-1i64), Just(0), Just(30), Just(100), Just(2_592_001)]
}

fn value() -> impl Strategy<Value = String> {
    "[a-z0-9]{0,12}"
}

fn flags(options: &'static [&'static str]) -> impl Strategy<Value = Vec<&'static str>> {
    proptest::sample::subsequence(options.to_vec(), 0..=options.len()).prop_shuffle()
}

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        (
            0..KEYS,
            any::<bool>(),
            value(),
            ttl(),
            prop_oneof![Just("ME"), Just("MS"), Just("MR"), Just("")],
            proptest::option::of(0usize..6),
            flags(&["c", "O42", "k", "q"])
        )
            .prop_map(|(key, b64, value, ttl, mode, cas, flags)| Cmd::MetaSet {
                key,
                b64,
                value,
                ttl,
                mode,
                cas,
                flags
            }),
        (
            0..KEYS,
            any::<bool>(),
            flags(&["v", "c", "t", "k", "O7", "s", "f", "q"]),
            proptest::option::of(ttl())
        )
            .prop_map(|(key, b64, flags, touch)| Cmd::MetaGet {
                key,
                b64,
                flags,
                touch
            }),
        (
            0..KEYS,
            any::<bool>(),
            proptest::option::of(0usize..6),
            flags(&["O9", "k", "q"])
        )
            .prop_map(|(key, b64, cas, flags)| Cmd::MetaDelete {
                key,
                b64,
                cas,
                flags
            }),
        (
            prop_oneof![Just("set"), Just("add"), Just("replace")],
            0..KEYS,
            value(),
            ttl()
        )
            .prop_map(|(verb, key, value, ttl)| Cmd::Classic {
                verb,
                key,
                value,
                ttl
            }),
        (0..KEYS, value(), 0usize..6).prop_map(|(key, value, cas)| Cmd::ClassicCas {
            key,
            value,
            cas
        }),
        (
            prop_oneof![Just("get"), Just("gets")],
            proptest::collection::vec(0..KEYS, 1..3)
        )
            .prop_map(|(verb, keys)| Cmd::Get { verb, keys }),
        (0..KEYS, any::<bool>()).prop_map(|(key, legacy_zero)| Cmd::Delete { key, legacy_zero }),
        (0..KEYS, ttl()).prop_map(|(key, ttl)| Cmd::Touch { key, ttl }),
        prop_oneof![
            Just("version\r\n"),
            Just("mn\r\n"),
            Just("bogus command\r\n"),
            Just("ms k 1 E5\r\nx\r\n"),
            Just("mg !!!! b v\r\n"),
            Just("mg k v v\r\n"),
            Just("delete k 1\r\n"),
        ]
        .prop_map(Cmd::Raw),
    ]
}

fn b64(data: &[u8]) -> String {
    memlock_tests::raw::base64(data)
}

/// Renders a command for one server; `cas_seen` resolves CAS references against that server.
fn render(cmd: &Cmd, prefix: &str, cas_seen: &[u64]) -> Vec<u8> {
    let key = |k: usize, b: bool| {
        let raw = format!("{prefix}k{k}");
        if b {
            format!("{} b", b64(raw.as_bytes()))
        } else {
            raw
        }
    };
    let cas = |i: usize| cas_seen.get(i).copied().unwrap_or(999_999 + i as u64);
    let text = match cmd {
        Cmd::MetaSet {
            key: k,
            b64,
            value,
            ttl,
            mode,
            cas: c,
            flags,
        } => {
            let (wire, b) = split_b(key(*k, *b64));
            let mut line = format!("ms {wire} {}{b} T{ttl}", value.len());
            if !mode.is_empty() {
                line += &format!(" {mode}");
            }
            if let Some(c) = c {
                line += &format!(" C{}", cas(*c));
            }
            for f in flags {
                line += &format!(" {f}");
            }
            format!("{line}\r\n{value}\r\n")
        }
        Cmd::MetaGet {
            key: k,
            b64,
            flags,
            touch,
        } => {
            let (wire, b) = split_b(key(*k, *b64));
            let mut line = format!("mg {wire}{b}");
            for f in flags {
                line += &format!(" {f}");
            }
            if let Some(t) = touch {
                line += &format!(" T{t}");
            }
            format!("{line}\r\n")
        }
        Cmd::MetaDelete {
            key: k,
            b64,
            cas: c,
            flags,
        } => {
            let (wire, b) = split_b(key(*k, *b64));
            let mut line = format!("md {wire}{b}");
            if let Some(c) = c {
                line += &format!(" C{}", cas(*c));
            }
            for f in flags {
                line += &format!(" {f}");
            }
            format!("{line}\r\n")
        }
        Cmd::Classic {
            verb,
            key: k,
            value,
            ttl,
        } => {
            format!(
                "{verb} {} 5 {ttl} {}\r\n{value}\r\n",
                key(*k, false),
                value.len()
            )
        }
        Cmd::ClassicCas {
            key: k,
            value,
            cas: c,
        } => {
            format!(
                "cas {} 0 0 {} {}\r\n{value}\r\n",
                key(*k, false),
                value.len(),
                cas(*c)
            )
        }
        Cmd::Get { verb, keys } => {
            let keys: Vec<String> = keys.iter().map(|k| key(*k, false)).collect();
            format!("{verb} {}\r\n", keys.join(" "))
        }
        Cmd::Delete {
            key: k,
            legacy_zero,
        } => {
            format!(
                "delete {}{}\r\n",
                key(*k, false),
                if *legacy_zero { " 0" } else { "" }
            )
        }
        Cmd::Touch { key: k, ttl } => format!("touch {} {ttl}\r\n", key(*k, false)),
        Cmd::Raw(text) => (*text).to_string(),
    };
    text.into_bytes()
}

/// `"<b64> b"` → (`"<b64>"`, `" b"`).
fn split_b(key: String) -> (String, &'static str) {
    match key.strip_suffix(" b") {
        Some(k) => (k.to_string(), " b"),
        None => (key, ""),
    }
}

struct Conn {
    stream: TcpStream,
    cas_seen: Vec<u64>,
    sequence: u64,
}

impl Conn {
    fn connect(port: u16) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        Conn {
            stream,
            cas_seen: Vec::new(),
            sequence: 0,
        }
    }

    /// Sends the command and an end marker (`mg` of a key never stored, with a fresh opaque);
    /// returns everything before the marker's `EN`.
    fn run(&mut self, cmd: &Cmd, prefix: &str) -> String {
        self.sequence += 1;
        let marker = format!("EN O{}\r\n", self.sequence);
        let mut bytes = render(cmd, prefix, &self.cas_seen);
        bytes.extend_from_slice(format!("mg end-marker O{}\r\n", self.sequence).as_bytes());
        self.stream.write_all(&bytes).expect("write");
        let mut reply = Vec::new();
        let mut chunk = [0u8; 4096];
        while !(reply.ends_with(marker.as_bytes())
            && (reply.len() == marker.len()
                || reply[..reply.len() - marker.len()].ends_with(b"\r\n")))
        {
            let n = self.stream.read(&mut chunk).expect("read");
            assert!(n > 0, "server closed the connection after {cmd:?}");
            reply.extend_from_slice(&chunk[..n]);
        }
        reply.truncate(reply.len() - marker.len());
        let text = String::from_utf8_lossy(&reply).into_owned();
        self.learn_cas(&text);
        text
    }

    fn learn_cas(&mut self, reply: &str) {
        for line in reply.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            let mut found = Vec::new();
            if words.first() == Some(&"VALUE") && words.len() == 5 {
                found.extend(words[4].parse::<u64>().ok());
            }
            if matches!(words.first(), Some(&("HD" | "VA" | "NS" | "EX" | "NF"))) {
                found.extend(
                    words
                        .iter()
                        .filter_map(|w| w.strip_prefix('c'))
                        .filter_map(|c| c.parse::<u64>().ok()),
                );
            }
            for cas in found {
                if cas != 0 && !self.cas_seen.contains(&cas) {
                    self.cas_seen.push(cas);
                }
            }
        }
    }
}

/// CAS values by rank of first appearance; remaining ttls by sign (-1, "never", kept).
fn normalise(reply: &str, cas_seen: &[u64]) -> String {
    let rank: HashMap<u64, usize> = cas_seen.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    let norm_cas = |v: &str| {
        v.parse::<u64>()
            .ok()
            .and_then(|c| rank.get(&c))
            .map(|r| format!("#{r}"))
    };
    reply
        .lines()
        .map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            if words.first() == Some(&"VALUE") && words.len() == 5 {
                let cas = norm_cas(words[4]).unwrap_or_else(|| words[4].to_string());
                return format!("{} {} {} {} {cas}", words[0], words[1], words[2], words[3]);
            }
            if !matches!(
                words.first(),
                Some(&("HD" | "VA" | "NS" | "EX" | "NF" | "EN"))
            ) {
                return line.to_string();
            }
            words
                .iter()
                .map(|w| {
                    if let Some(v) = w.strip_prefix('c')
                        && let Some(r) = norm_cas(v)
                    {
                        return format!("c{r}");
                    }
                    if let Some(v) = w.strip_prefix('t')
                        && let Ok(t) = v.parse::<i64>()
                    {
                        return match t {
                            -1 => "t-1".into(),
                            t if t > 0 => "t+".into(),
                            _ => "t-past".into(),
                        };
                    }
                    w.to_string()
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn start_fake(credentials: Option<(&'static str, &'static str)>) -> u16 {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("addr").port())
                .expect("send port");
            let config = ServerConfig {
                memory_limit: 64 << 20,
                evict: true,
                credentials,
            };
            let handle = ServerHandle::new(config, 1, Duration::ZERO);
            let _ = serve_tokio(listener, handle).await;
        });
    });
    rx.recv().expect("fake port")
}

static COMMANDS: AtomicUsize = AtomicUsize::new(0);
static CASES: AtomicUsize = AtomicUsize::new(0);

#[test]
fn fake_matches_real_memcached() {
    let real = Memcached::start();
    let fake_port = start_fake(None);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let result = runner.run(&proptest::collection::vec(cmd(), 1..40), |script| {
        let case = CASES.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("c{case}-");
        let mut real_conn = Conn::connect(real.port());
        let mut fake_conn = Conn::connect(fake_port);
        for (i, cmd) in script.iter().enumerate() {
            let real_reply = real_conn.run(cmd, &prefix);
            let fake_reply = fake_conn.run(cmd, &prefix);
            COMMANDS.fetch_add(1, Ordering::Relaxed);
            let (r, f) = (
                normalise(&real_reply, &real_conn.cas_seen),
                normalise(&fake_reply, &fake_conn.cas_seen),
            );
            prop_assert_eq!(
                &r,
                &f,
                "command {} of {:?}: real {:?} vs fake {:?}",
                i,
                script,
                real_reply,
                fake_reply
            );
        }
        Ok(())
    });
    println!(
        "differential: {} commands in {} scripts compared against memcached",
        COMMANDS.load(Ordering::Relaxed),
        CASES.load(Ordering::Relaxed)
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Reads one `\r\n`-terminated line (5 s read timeout: a missing line fails, never hangs).
fn read_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            other => panic!("no complete line after {line:?}: {other:?}"),
        }
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// memcached's ASCII authentication (`-Y`) as the lock meets it: everything before a good `set`
/// is refused with one `CLIENT_ERROR unauthenticated` per write (the rest of what was sent is
/// dropped), a wrong password too, and a good one answers `STORED` and opens the connection.
#[test]
fn fake_matches_real_memcached_authentication() {
    let dir = std::env::temp_dir().join(format!("memlock-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let auth_file = dir.join("auth");
    std::fs::write(&auth_file, "alice:s3cret\n").expect("auth file");
    let real = Memcached::start_with(&["-Y", auth_file.to_str().expect("utf-8 path")]);
    let fake_port = start_fake(Some(("alice", "s3cret")));
    // (what one write sends, how many reply lines it gets)
    let script: [(&[u8], usize); 8] = [
        (b"mn\r\n", 1),
        (b"set a 0 0 11\r\nalice wrong\r\n", 1),
        (b"stats\r\nmg x v\r\n", 1),
        (b"set a 0 0 11\r\nalice wrong\r\nmn\r\n", 1),
        (b"set a 0 0 9\r\nbob s3cre\r\n", 1),
        (b"set memlock:auth 0 -1 12\r\nalice s3cret\r\nmn\r\n", 2),
        (b"ms k 1 T0\r\nx\r\nmg k v\r\n", 3),
        (b"mg memlock:auth v\r\n", 1),
    ];
    let mut replies = Vec::new();
    for port in [real.port(), fake_port] {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut lines = Vec::new();
        for (bytes, count) in script {
            stream.write_all(bytes).expect("write");
            for _ in 0..count {
                lines.push(read_line(&mut stream));
            }
        }
        // Nothing left over: a reply line the script did not count would come before this one.
        stream.write_all(b"mn\r\n").expect("write");
        lines.push(read_line(&mut stream));
        replies.push(lines);
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        replies[0], replies[1],
        "real (left) and fake (right) differ"
    );
    assert_eq!(replies[0][0], "CLIENT_ERROR unauthenticated\r\n");
    assert_eq!(replies[0][5], "STORED\r\n");
    assert_eq!(replies[0].last().map(String::as_str), Some("MN\r\n"));
}

/// `stats uptime` of a process that has just started: memcached counts it from a start set two
/// seconds in the past (`uptime 2`), which quorum mode's restart rule reads to tell how long a
/// server has run. A fake that reported its internal tick (62 at start) would make every
/// restarted server look a minute old, and the simulation could never see the rule at work.
#[test]
fn fake_matches_real_memcached_uptime_at_start() {
    let uptime = |port: u16| -> u64 {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        stream.write_all(b"stats\r\n").expect("write");
        loop {
            let line = read_line(&mut stream);
            if let Some(v) = line.strip_prefix("STAT uptime ") {
                return v.trim().parse().expect("uptime is a number");
            }
            assert_ne!(line, "END\r\n", "stats without uptime");
        }
    };
    let real = Memcached::start();
    let fake_port = start_fake(None);
    let (real_uptime, fake_uptime) = (uptime(real.port()), uptime(fake_port));
    assert!(
        real_uptime <= 3 && fake_uptime <= 3 && real_uptime.abs_diff(fake_uptime) <= 1,
        "uptime of a fresh process: real {real_uptime}, fake {fake_uptime}"
    );
}
