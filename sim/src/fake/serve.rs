//! Runs a [`FakeMemcached`] on async streams, with the fault knobs the simulation turns.
//!
//! One [`ServerHandle`] is one server *slot*: the simulation restarts the process in it (new
//! items, new CAS counter, new pid) and reaches in to evict items, garble replies or lose the
//! reply to a command it has applied.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::{FakeMemcached, Step};

/// memcached's `current_time` starts at 62: `process_started` is set back
/// `ITEM_UPDATE_INTERVAL + 2` seconds.
const START_TICK: u64 = 62;

/// An item the server stored, attributed to the connection that sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub peer: String,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// Until when the server is sure to keep it (its one-second tick may keep it up to a second
    /// longer); `None`: never expires.
    pub lives_until: Option<Duration>,
    pub at: Duration,
}

/// An item the server lost without being asked to: evicted, or gone with its process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub at: Duration,
    pub cause: Loss,
}

/// Why a server lost an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Loss {
    /// Memory pressure: an assumption of the lock fails (memcached must keep its locks).
    Evicted,
    /// The process died: quorum mode's restart rule is there for exactly this.
    Crashed,
}

/// A change to an existing item the server applied, attributed to the connection that sent it:
/// a delete, or a replacement (a compare-and-set, or a plain set over it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub peer: String,
    pub key: Vec<u8>,
    /// The value the item held before: the owner token it was deleted or replaced with.
    pub old: Vec<u8>,
    /// The value stored in its place; `None` for a delete.
    pub new: Option<Vec<u8>>,
    pub at: Duration,
}

pub struct ServerState {
    pub memcached: FakeMemcached,
    started: Instant,
    /// Sub-second offset of this process's tick, so items' n−1..n lifetimes vary.
    phase: Duration,
    /// How long the process had run when the simulation began (whole seconds; zero for a
    /// restart): a cluster that was up long before, as quorum mode's restart rule sees it.
    up_before_s: u64,
    /// Reply garbage to every command while set.
    pub garbage: bool,
    /// Apply the next command, then close its connection without replying.
    pub lose_next_reply: bool,
    /// The next (re)start keeps this process's pid and start time.
    pub keep_process: bool,
    /// Out of memory, eviction off: stores fail with `SERVER_ERROR` (survives a restart).
    pub full: bool,
    pub stores: Vec<Stored>,
    pub changes: Vec<Change>,
    pub drops: Vec<Dropped>,
    /// When each process started (simulated time), the first one excepted.
    pub restarts: Vec<Duration>,
    /// (peer, when) of every reply lost on purpose (`lose_next_reply`).
    pub lost_replies: Vec<(String, Duration)>,
}

impl ServerState {
    /// Records every item as lost at `at` (simulated time).
    fn drop_all(&mut self, at: Duration, cause: Loss) {
        let lost = self.memcached.store.contents();
        self.drops
            .extend(lost.into_iter().map(|(key, value)| Dropped {
                key,
                value,
                at,
                cause,
            }));
    }
}

impl ServerState {
    /// The server's `current_time`.
    pub fn tick(&self) -> u64 {
        tick_after(self.started.elapsed() + self.phase) + self.up_before_s
    }

    /// How long an item stored now with expiry tick `exptime` is sure to live, whatever the
    /// phase of the server's one-second tick: (exptime − now) − 1 seconds. memcached may drop it
    /// up to a second later, but nobody may count on that.
    fn guaranteed_life(&self, exptime: u64) -> Duration {
        guaranteed_life(exptime, self.tick())
    }
}

/// memcached's `current_time` once `since_start` (time since the process started, plus the
/// tick's phase) has passed.
fn tick_after(since_start: Duration) -> u64 {
    START_TICK + since_start.as_secs()
}

/// How long an item with expiry tick `exptime`, stored at tick `now`, is sure to live.
fn guaranteed_life(exptime: u64, now: u64) -> Duration {
    Duration::from_secs(exptime.saturating_sub(now).saturating_sub(1))
}

#[derive(Clone)]
pub struct ServerHandle(Arc<Mutex<ServerState>>);

/// What a fresh process looks like.
#[derive(Debug, Clone, Copy)]
pub struct ServerConfig {
    pub memory_limit: usize,
    pub evict: bool,
    /// memcached's `-Y`: the user and password every connection must authenticate with.
    pub credentials: Option<(&'static str, &'static str)>,
}

impl ServerHandle {
    /// A slot with a process started now. Under turmoil, create it (or `restart` it) inside the
    /// host, so its clock is simulated time.
    pub fn new(config: ServerConfig, pid: u64, phase: Duration) -> Self {
        let mut memcached =
            FakeMemcached::new(pid, 1_700_000_000, config.memory_limit, config.evict);
        if let Some((username, password)) = config.credentials {
            memcached.require_authentication(username, password);
        }
        ServerHandle(Arc::new(Mutex::new(ServerState {
            memcached,
            started: Instant::now(),
            phase,
            up_before_s: 0,
            garbage: false,
            lose_next_reply: false,
            keep_process: false,
            full: false,
            stores: Vec::new(),
            changes: Vec::new(),
            drops: Vec::new(),
            restarts: Vec::new(),
            lost_replies: Vec::new(),
        })))
    }

    pub fn lock(&self) -> MutexGuard<'_, ServerState> {
        // A poisoned lock means a panic in the fake itself; the simulation reports that panic.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Memory pressure: every item is evicted (and recorded as lost at `at`, simulated time:
    /// the caller knows it, as this may run outside any simulated host).
    pub fn evict_all(&self, at: Duration) {
        let mut state = self.lock();
        state.drop_all(at, Loss::Evicted);
        state.memcached.store.evict_all();
    }

    /// Starts a new process in this slot: all items and the CAS counter are gone. With
    /// `keep_process` set, the new process reports the old one's pid and start time. The process
    /// looks as if it had started `up_before` ago (whole seconds).
    pub fn restart(&self, config: ServerConfig, pid: u64, phase: Duration, up_before: Duration) {
        let mut state = self.lock();
        // The old process's items are gone (they became unreachable when it crashed).
        state.drop_all(turmoil::sim_elapsed().unwrap_or_default(), Loss::Crashed);
        let kept = std::mem::take(&mut state.keep_process);
        let (pid, started) = if kept {
            state.memcached.server_process()
        } else {
            (
                pid,
                (1_700_000_000 + turmoil::sim_elapsed().unwrap_or_default().as_secs())
                    .saturating_sub(up_before.as_secs()),
            )
        };
        state.memcached = FakeMemcached::new(pid, started, config.memory_limit, config.evict);
        if let Some((username, password)) = config.credentials {
            state.memcached.require_authentication(username, password);
        }
        // A new process's clock starts again, reincarnated or not: its uptime is small.
        if up_before.is_zero() {
            state
                .restarts
                .push(turmoil::sim_elapsed().unwrap_or_default());
        }
        state.up_before_s = up_before.as_secs();
        state.started = Instant::now();
        state.phase = phase;
        state.garbage = false;
        state.lose_next_reply = false;
    }
}

/// Serves one connection until the peer closes it, the stream fails, or a fault closes it.
pub async fn serve_connection<S>(
    mut stream: S,
    peer: String,
    server: ServerHandle,
) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let mut authenticated = false;
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..n]);
        // Answer every complete command in one write, as memcached does.
        let mut out = Vec::new();
        let mut close = false;
        {
            let mut state = server.lock();
            while !buffer.is_empty() && !close {
                if state.garbage {
                    buffer.clear();
                    out.extend_from_slice(b"HELLO \x01 GARBAGE\r\n");
                    break;
                }
                let tick = state.tick();
                state.memcached.full = state.full;
                match state
                    .memcached
                    .process_on(&mut authenticated, &buffer, tick)
                {
                    Step::Incomplete => break,
                    Step::Close { reply } => {
                        out.extend_from_slice(&reply);
                        close = true;
                    }
                    Step::Reply { consumed, reply } => {
                        buffer.drain(..consumed);
                        // Simulated time under turmoil; outside a simulation nobody reads it.
                        let at = turmoil::sim_elapsed().unwrap_or_default();
                        for (key, value, exptime) in std::mem::take(&mut state.memcached.stored) {
                            let lives_until =
                                (exptime != 0).then(|| at + state.guaranteed_life(exptime));
                            state.stores.push(Stored {
                                peer: peer.clone(),
                                key,
                                value,
                                lives_until,
                                at,
                            });
                        }
                        let removed = std::mem::take(&mut state.memcached.removed);
                        let swapped = std::mem::take(&mut state.memcached.swapped);
                        let changes = removed
                            .into_iter()
                            .map(|(key, old)| (key, old, None))
                            .chain(
                                swapped
                                    .into_iter()
                                    .map(|(key, old, new)| (key, old, Some(new))),
                            );
                        state.changes.extend(changes.map(|(key, old, new)| Change {
                            peer: peer.clone(),
                            key,
                            old,
                            new,
                            at,
                        }));
                        if std::mem::take(&mut state.lose_next_reply) {
                            // Applied, never answered: the connection dies with the reply.
                            state.lost_replies.push((peer.clone(), at));
                            return Ok(());
                        }
                        out.extend_from_slice(&reply);
                    }
                }
            }
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
        }
        if close {
            return Ok(());
        }
    }
}

/// Accepts connections on a tokio listener (real TCP) forever.
pub async fn serve_tokio(
    listener: tokio::net::TcpListener,
    server: ServerHandle,
) -> std::io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let server = server.clone();
        tokio::spawn(async move {
            let _ = serve_connection(stream, peer.to_string(), server).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the phase of the server's one-second tick when an item is stored with `T2`, the
    /// server still has it until its guaranteed life (1 s) has passed: the checker's validity
    /// property relies on this.
    #[test]
    fn an_item_lives_at_least_its_guaranteed_life() {
        for phase_ns in [0, 1, 500_000_000, 999_000_000, 999_999_999] {
            let stored_at = Duration::from_nanos(phase_ns);
            let now = tick_after(stored_at);
            let exptime = now + 2;
            let life = guaranteed_life(exptime, now);
            assert_eq!(life, Duration::from_secs(1), "phase {phase_ns} ns");
            let last_instant = stored_at + life - Duration::from_nanos(1);
            assert!(
                tick_after(last_instant) < exptime,
                "phase {phase_ns} ns: expired before its guaranteed life"
            );
            // And memcached may indeed drop it right after: the bound is tight.
            if phase_ns == 999_999_999 {
                assert_eq!(
                    tick_after(stored_at + life + Duration::from_nanos(1)),
                    exptime
                );
            }
        }
    }
}
