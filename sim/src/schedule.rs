//! A case: the workload seed, the world's shape and a fault schedule. Proptest generates cases
//! and shrinks failing ones; a case prints as one line that `just sim --replay` reads back.
//!
//! ```text
//! seed=42;clients=3;servers=1;drift=0,0.002,-0.001;faults=partition:c1:mc0@1200+800,crash:mc0@3000+500
//! seed=7;clients=3;servers=3;mode=quorum;drift=0,0,0;faults=isolate:mc2@500+2000
//! ```
//!
//! (`mode=` appears only in quorum mode, so cases printed before it existed replay unchanged.)

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use proptest::prelude::*;

/// What can go wrong, each with its target(s).
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// No messages between a client and a server (connects fail at once, sends vanish).
    Partition { client: usize, server: usize },
    /// No messages between a server and any client; its items survive (two at once isolate a
    /// majority of three).
    Isolate { server: usize },
    /// Messages between a client and a server are held, then delivered at the end.
    Hold { client: usize, server: usize },
    /// Every message to and from a server takes up to 150 ms.
    Delay { server: usize },
    /// The server applies the next command it receives, then drops the connection unanswered.
    LoseReply { server: usize },
    /// The server process dies (all items and CAS counters lost) and restarts after the duration.
    Crash { server: usize },
    /// Like `Crash`, but the new process has the old one's pid and start time (memcached as pid 1
    /// in a container, restarted within the same second): `stats` cannot tell them apart.
    Reincarnate { server: usize },
    /// Memory pressure: every item on the server is evicted.
    Evict { server: usize },
    /// The server is full and does not evict (`-M`): every store fails with `SERVER_ERROR`.
    Full { server: usize },
    /// The server answers garbage for the duration.
    Garbage { server: usize },
    /// The client stops (a GC pause), wherever it is, for the duration.
    Pause { client: usize },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub kind: FaultKind,
    pub at: Duration,
    pub duration: Duration,
}

/// Fault kinds by name, for `--faults`.
pub const KINDS: [&str; 11] = [
    "partition",
    "isolate",
    "hold",
    "delay",
    "lose-reply",
    "crash",
    "reincarnate",
    "evict",
    "full",
    "garbage",
    "pause",
];

impl FaultKind {
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Partition { .. } => "partition",
            FaultKind::Isolate { .. } => "isolate",
            FaultKind::Hold { .. } => "hold",
            FaultKind::Delay { .. } => "delay",
            FaultKind::LoseReply { .. } => "lose-reply",
            FaultKind::Crash { .. } => "crash",
            FaultKind::Reincarnate { .. } => "reincarnate",
            FaultKind::Evict { .. } => "evict",
            FaultKind::Full { .. } => "full",
            FaultKind::Garbage { .. } => "garbage",
            FaultKind::Pause { .. } => "pause",
        }
    }

    /// The server this fault acts on, if any.
    pub fn server(&self) -> Option<usize> {
        match self {
            FaultKind::Partition { server, .. }
            | FaultKind::Hold { server, .. }
            | FaultKind::Isolate { server }
            | FaultKind::Delay { server }
            | FaultKind::LoseReply { server }
            | FaultKind::Crash { server }
            | FaultKind::Reincarnate { server }
            | FaultKind::Evict { server }
            | FaultKind::Full { server }
            | FaultKind::Garbage { server } => Some(*server),
            FaultKind::Pause { .. } => None,
        }
    }

    /// The client this fault acts on, if any.
    pub fn client(&self) -> Option<usize> {
        match self {
            FaultKind::Partition { client, .. }
            | FaultKind::Hold { client, .. }
            | FaultKind::Pause { client } => Some(*client),
            _ => None,
        }
    }

    /// The same fault aimed at server `server % servers`: faults are generated for the most
    /// servers a shape allows and folded onto the count a case draws, so that shrinking the count
    /// keeps the rest of the case.
    fn folded(self, servers: usize) -> FaultKind {
        let fold = |s: usize| s % servers.max(1);
        match self {
            FaultKind::Partition { client, server } => FaultKind::Partition {
                client,
                server: fold(server),
            },
            FaultKind::Hold { client, server } => FaultKind::Hold {
                client,
                server: fold(server),
            },
            FaultKind::Isolate { server } => FaultKind::Isolate {
                server: fold(server),
            },
            FaultKind::Delay { server } => FaultKind::Delay {
                server: fold(server),
            },
            FaultKind::LoseReply { server } => FaultKind::LoseReply {
                server: fold(server),
            },
            FaultKind::Crash { server } => FaultKind::Crash {
                server: fold(server),
            },
            FaultKind::Reincarnate { server } => FaultKind::Reincarnate {
                server: fold(server),
            },
            FaultKind::Evict { server } => FaultKind::Evict {
                server: fold(server),
            },
            FaultKind::Full { server } => FaultKind::Full {
                server: fold(server),
            },
            FaultKind::Garbage { server } => FaultKind::Garbage {
                server: fold(server),
            },
            pause @ FaultKind::Pause { .. } => pause,
        }
    }
}

/// How the clients use their servers (`options.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Each key lives on one server.
    #[default]
    Shard,
    /// Each lock is held by a majority of all servers.
    Quorum,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Shard => "shard",
            Mode::Quorum => "quorum",
        }
    }
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "shard" => Ok(Mode::Shard),
            "quorum" => Ok(Mode::Quorum),
            other => Err(format!("unknown mode {other:?} (shard or quorum)")),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub seed: u64,
    pub clients: usize,
    pub servers: usize,
    pub mode: Mode,
    /// Per client: its clock runs at `1 + drift` of simulated time.
    pub drift: Vec<f64>,
    pub faults: Vec<Fault>,
}

impl Case {
    /// When the last fault is over.
    pub fn faults_end(&self) -> Duration {
        self.faults
            .iter()
            .map(|f| f.at + f.duration)
            .max()
            .unwrap_or_default()
    }
}

/// What the generator may produce.
#[derive(Debug, Clone)]
pub struct Shape {
    pub clients: usize,
    /// Servers per case: each case draws its count from this range (the default run mixes 1, 2
    /// and 3: sharding and server-down paths need more than one).
    pub servers: std::ops::RangeInclusive<usize>,
    pub mode: Mode,
    pub kinds: Vec<&'static str>,
    pub max_faults: usize,
    /// Largest |drift| generated; the lock's allowance covers 1 %. Half the clients' drifts are
    /// drawn within its last tenth (a quarter on the slow side, where a too-generous validity
    /// would show).
    pub max_drift: f64,
}

fn fault(
    clients: usize,
    servers: usize,
    kinds: Vec<&'static str>,
) -> impl Strategy<Value = Fault> + use<> {
    let (c, s) = (clients, servers);
    let kind = proptest::sample::select(kinds).prop_flat_map(move |name| {
        let client = 0..c;
        let server = 0..s;
        match name {
            "partition" => (client, server)
                .prop_map(|(client, server)| FaultKind::Partition { client, server })
                .boxed(),
            "hold" => (client, server)
                .prop_map(|(client, server)| FaultKind::Hold { client, server })
                .boxed(),
            "isolate" => server
                .prop_map(|server| FaultKind::Isolate { server })
                .boxed(),
            "delay" => server
                .prop_map(|server| FaultKind::Delay { server })
                .boxed(),
            "lose-reply" => server
                .prop_map(|server| FaultKind::LoseReply { server })
                .boxed(),
            "crash" => server
                .prop_map(|server| FaultKind::Crash { server })
                .boxed(),
            "reincarnate" => server
                .prop_map(|server| FaultKind::Reincarnate { server })
                .boxed(),
            "evict" => server
                .prop_map(|server| FaultKind::Evict { server })
                .boxed(),
            "full" => server.prop_map(|server| FaultKind::Full { server }).boxed(),
            "garbage" => server
                .prop_map(|server| FaultKind::Garbage { server })
                .boxed(),
            _ => client
                .prop_map(|client| FaultKind::Pause { client })
                .boxed(),
        }
    });
    // A quarter of the faults start in the first 1.5 s, while the first leases are held: a
    // crash there restarts CAS values while they are still small, so a new holder's CAS can equal
    // a lease taken before the crash (the restart hazard that release must survive).
    let at = prop_oneof![3 => 0u64..12_000, 1 => 0u64..1_500];
    (kind, at, 50u64..3_000).prop_map(|(kind, at, duration)| Fault {
        kind,
        at: Duration::from_millis(at),
        duration: Duration::from_millis(duration),
    })
}

/// Cases of this shape. Shrinking drops faults, shortens them, zeroes drift and lowers the
/// server count (faults are drawn for the most servers and folded onto the count drawn).
pub fn cases(shape: &Shape) -> impl Strategy<Value = Case> + use<> {
    let clients = shape.clients;
    let max_servers = *shape.servers.end();
    let faults = if shape.kinds.is_empty() || shape.max_faults == 0 {
        Just(Vec::new()).boxed()
    } else {
        proptest::collection::vec(
            fault(clients, max_servers.max(1), shape.kinds.clone()),
            0..=shape.max_faults,
        )
        .boxed()
    };
    let max_drift = shape.max_drift;
    let mode = shape.mode;
    // Half the clients anywhere in ±max, a quarter each just inside +max and -max.
    let one_drift = if max_drift > 0.0 {
        prop_oneof![
            2 => -max_drift..max_drift,
            1 => max_drift * 0.9..max_drift,
            1 => -max_drift..-max_drift * 0.9,
        ]
        .boxed()
    } else {
        Just(0.0).boxed()
    };
    let drift = proptest::collection::vec(one_drift, clients);
    (any::<u64>(), shape.servers.clone(), drift, faults).prop_map(
        move |(seed, servers, drift, faults)| {
            let mut faults: Vec<Fault> = faults
                .into_iter()
                .map(|f| Fault {
                    kind: f.kind.folded(servers),
                    ..f
                })
                .collect();
            faults.sort_by_key(|f| f.at);
            let drift = drift
                .into_iter()
                .map(|d| (d * 10_000.0).round() / 10_000.0)
                .collect();
            Case {
                seed,
                clients,
                servers,
                mode,
                drift,
                faults,
            }
        },
    )
}

/// The command that replays `case`, as printed for a failure: paste it into a shell in the
/// repository.
pub fn replay_command(case: &Case) -> String {
    format!("just sim --replay '{case}'")
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match &self.kind {
            FaultKind::Partition { client, server } | FaultKind::Hold { client, server } => {
                format!("c{client}:mc{server}")
            }
            FaultKind::Pause { client } => format!("c{client}"),
            FaultKind::Isolate { server }
            | FaultKind::Delay { server }
            | FaultKind::LoseReply { server }
            | FaultKind::Crash { server }
            | FaultKind::Reincarnate { server }
            | FaultKind::Evict { server }
            | FaultKind::Full { server }
            | FaultKind::Garbage { server } => format!("mc{server}"),
        };
        write!(
            f,
            "{}:{target}@{}+{}",
            self.kind.name(),
            self.at.as_millis(),
            self.duration.as_millis()
        )
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let drift: Vec<String> = self.drift.iter().map(|d| format!("{d}")).collect();
        let faults: Vec<String> = self.faults.iter().map(ToString::to_string).collect();
        write!(
            f,
            "seed={};clients={};servers={};",
            self.seed, self.clients, self.servers
        )?;
        if self.mode != Mode::Shard {
            write!(f, "mode={};", self.mode.name())?;
        }
        write!(f, "drift={};faults={}", drift.join(","), faults.join(","))
    }
}

/// `c3` → 3 with prefix `"c"`, `mc1` → 1 with prefix `"mc"`.
fn index(text: &str, prefix: &str) -> Result<usize, String> {
    text.strip_prefix(prefix)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("bad target {text:?}"))
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (name, rest) = text
            .split_once(':')
            .ok_or_else(|| format!("bad fault {text:?}"))?;
        let (target, timing) = rest
            .split_once('@')
            .ok_or_else(|| format!("bad fault {text:?}"))?;
        let (at, duration) = timing
            .split_once('+')
            .ok_or_else(|| format!("bad fault {text:?}"))?;
        let ms = |v: &str| {
            v.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| format!("bad time {v:?}"))
        };
        let pair = || -> Result<(usize, usize), String> {
            let (c, s) = target
                .split_once(':')
                .ok_or_else(|| format!("expected cN:mcM in {text:?}"))?;
            Ok((index(c, "c")?, index(s, "mc")?))
        };
        let server = || index(target, "mc");
        let kind = match name {
            "partition" => {
                pair().map(|(client, server)| FaultKind::Partition { client, server })?
            }
            "hold" => pair().map(|(client, server)| FaultKind::Hold { client, server })?,
            "isolate" => FaultKind::Isolate { server: server()? },
            "delay" => FaultKind::Delay { server: server()? },
            "lose-reply" => FaultKind::LoseReply { server: server()? },
            "crash" => FaultKind::Crash { server: server()? },
            "reincarnate" => FaultKind::Reincarnate { server: server()? },
            "evict" => FaultKind::Evict { server: server()? },
            "full" => FaultKind::Full { server: server()? },
            "garbage" => FaultKind::Garbage { server: server()? },
            "pause" => FaultKind::Pause {
                client: index(target, "c")?,
            },
            other => return Err(format!("unknown fault kind {other:?}")),
        };
        Ok(Fault {
            kind,
            at: ms(at)?,
            duration: ms(duration)?,
        })
    }
}

impl FromStr for Case {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut case = Case {
            seed: 0,
            clients: 0,
            servers: 0,
            mode: Mode::Shard,
            drift: Vec::new(),
            faults: Vec::new(),
        };
        for part in text.trim().split(';') {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("bad part {part:?}"))?;
            let list = || value.split(',').filter(|v| !v.is_empty());
            match key {
                "seed" => case.seed = value.parse().map_err(|_| "bad seed")?,
                "clients" => case.clients = value.parse().map_err(|_| "bad clients")?,
                "servers" => case.servers = value.parse().map_err(|_| "bad servers")?,
                "mode" => case.mode = value.parse()?,
                "drift" => {
                    case.drift = list()
                        .map(|d| {
                            d.parse::<f64>()
                                .ok()
                                .filter(|d| d.is_finite() && d.abs() < 0.5)
                                .ok_or_else(|| format!("bad drift {d:?} (a number, |drift| < 0.5)"))
                        })
                        .collect::<Result<_, _>>()?
                }
                "faults" => case.faults = list().map(str::parse).collect::<Result<_, _>>()?,
                other => return Err(format!("unknown part {other:?}")),
            }
        }
        if case.clients == 0 || case.servers == 0 || case.drift.len() != case.clients {
            return Err("a case needs clients, servers and one drift per client".into());
        }
        if let Some(f) = case.faults.iter().find(|f| {
            f.kind.server().is_some_and(|s| s >= case.servers)
                || f.kind.client().is_some_and(|c| c >= case.clients)
        }) {
            return Err(format!(
                "fault {f} names a client or server the case does not have"
            ));
        }
        Ok(case)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_round_trip_through_text() {
        let text = "seed=42;clients=2;servers=2;drift=0,-0.002;faults=partition:c1:mc0@1200+800,crash:mc1@3000+500,pause:c0@10+20,lose-reply:mc0@5+1";
        let case: Case = text.parse().expect("parses");
        assert_eq!(case.to_string(), text);
        assert_eq!(case.mode, Mode::Shard);
        let text = "seed=7;clients=1;servers=3;mode=quorum;drift=0;faults=isolate:mc2@500+2000";
        let case: Case = text.parse().expect("parses");
        assert_eq!(case.mode, Mode::Quorum);
        assert_eq!(case.to_string(), text);
        assert!(
            "seed=1;clients=1;servers=1;drift=;faults="
                .parse::<Case>()
                .is_err()
        );
    }
}
