//! The properties, checked on a recorded history.
//!
//! - **Mutual exclusion**: no two leases of the same key (two owner tokens, whichever clients hold
//!   them) are believed held at the same simulated instant. A client believes from the reply of a
//!   successful acquire until the earlier of its lease's valid-until and the start of its release.
//!   Excused (and counted per reason) only where a stated assumption fails: the server lost the
//!   first lease's item (evicted, or gone with a crashed process — the fake records each such
//!   item) after storing it and before storing the second lease's item; or the first holder's
//!   clock ran slower than the lock's drift allowance covers, and then only for the part of the
//!   overlap that this extra drift explains.
//! - **Validity against the item's life**: every belief ends within the guaranteed life of the
//!   item that backs it — stored with `T<n>` (by the acquire or the extend that set the belief's
//!   end), memcached keeps an item at least n − 1 seconds, and may drop it right then whatever the
//!   phase of its one-second tick. Excused only for the part explained by drift beyond the
//!   allowance. This catches a holder that believes too long even when no other client happens
//!   to acquire in that window, and whatever luck the tick's phase brought in this run.
//! - **Release and extend safety**: every item a server deleted, or replaced (an extend), held an
//!   owner token that the server had stored for the client that sent the command — including
//!   tokens of acquires whose outcome that client never learned — and an extend stored the same
//!   token back; and no delete removed a lease while it was believed held (a holder's own release
//!   ends its belief first), so a client's stale release cannot remove its own current lease.
//! - **Fencing**: per key, the fencing tokens of successive acquisitions strictly increase, and the
//!   guarded resource never accepted a token below one it had accepted. Stated assumption: the
//!   key's server did not start twice within one second (memcached's start time has 1 s
//!   resolution); a decrease across such a restart, or across a `reincarnate` fault (which keeps
//!   the start time on purpose), is excused and counted. Release and extend safety have no such
//!   excuse: they must hold across `reincarnate` too.
//! - **Rollback**: an acquire that did not win leaves nothing behind: every item stored with its
//!   owner token is deleted, or lost by the server soon after the store (within the call's round
//!   and rollback), unless the exchange between that client and that server was cut then (its
//!   reply lost, as the fake records; a partition, isolation, hold, delay or garbage on the
//!   pair): excused and counted.
//! - **Quorum mode** reads these per majority: a belief must end within the guaranteed life of the
//!   items on a majority of the servers; only eviction excuses an overlap (a crash must not: the
//!   restart rule is there for it), and only where the second lease was stored on a server that
//!   had evicted the first; fencing tokens are not offered, so every quorum lease's token must be
//!   zero. The **restart rule** is checked directly too: a belief stored on a majority is backed
//!   by a majority of servers whose process had run `max_lease` when it stored the item.
//! - **Liveness**: after the faults stop and every client has finished its rounds, every client's
//!   final blocking acquire succeeds.
//! - **Bounded calls**: no call lasts longer than its bound in simulated time, and every error is
//!   one the README documents for these conditions.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use memlock_host::ErrorCode;

use crate::history::{Event, Loss, Op, Outcome};
use crate::schedule::{Case, FaultKind, Mode};

/// The lock's drift allowance covers a clock up to this much slower than real time.
pub const DRIFT_ALLOWANCE: f64 = 0.01;

/// Why an apparent violation was excused: a stated assumption did not hold.
pub const LOST_ITEM: &str = "item lost";
pub const SLOW_CLOCK: &str = "clock drift beyond allowance";
pub const SAME_SECOND_RESTART: &str = "restart within its start second";
pub const FAULT_NEAR_ROLLBACK: &str = "rollback cut short by a fault";

#[derive(Debug, Default)]
pub struct Report {
    pub violations: Vec<String>,
    /// Apparent violations excused by a stated assumption, per reason.
    pub excused: BTreeMap<&'static str, usize>,
    pub acquisitions: usize,
    /// Writes by stale holders that the guarded resource rejected thanks to fencing tokens.
    pub stale_writes_rejected: usize,
    /// Per fault kind active when an acquire began ("none": no fault): (acquires, acquired).
    pub attempts: BTreeMap<&'static str, (usize, usize)>,
}

impl Report {
    fn excuse(&mut self, reason: &'static str) {
        *self.excused.entry(reason).or_default() += 1;
    }
}

/// Longest a single call may take: connect + handshake + command, possibly a token lookup, resend
/// and orphan cleanup, each bounded by the configured timeouts. In quorum mode a call visits
/// every server, and connects and rollbacks go one server after another.
pub fn call_bound(
    op_timeout: Duration,
    reconnect: Duration,
    mode: Mode,
    servers: usize,
) -> Duration {
    let one = (reconnect + op_timeout * 2) * 6;
    match mode {
        Mode::Shard => one,
        Mode::Quorum => one * servers.max(1) as u32,
    }
}

pub struct Limits {
    pub call_bound: Duration,
    pub liveness_timeout: Duration,
    /// How long after a store a fault may still explain an item a lost acquire left: the call's
    /// round and its rollback (a few timeouts per server).
    pub rollback_window: Duration,
    /// Quorum mode's `options.max_lease`: how long a server process must have run to count.
    pub max_lease: Duration,
}

/// A span during which one client believes it holds a key.
#[derive(Debug, Clone)]
struct Belief {
    client: usize,
    token: String,
    /// The ttl of the acquire or extend that set `end`.
    ttl_ms: i64,
    start: Duration,
    end: Duration,
    /// When the call (acquire or extend) that set `end` ended.
    end_set_at: Duration,
}

/// How much longer than the allowance covers a holder whose clock runs at 1 + `drift` believes
/// in a lease of `ttl_ms`: zero unless its clock is slower than the allowance. The holder counts
/// ttl − (1 % of ttl + 2 ms) on its own clock, which is (that) / (1 + drift) of real time.
pub fn slow_clock_excess(drift: f64, ttl_ms: i64) -> Duration {
    if drift >= -DRIFT_ALLOWANCE || !drift.is_finite() || drift <= -1.0 {
        return Duration::ZERO;
    }
    let ttl = ttl_ms.max(0) as f64;
    let counted = (ttl - (ttl / 100.0 + 2.0)).max(0.0);
    let excess_ms = counted * (1.0 / (1.0 + drift) - 1.0 / (1.0 - DRIFT_ALLOWANCE));
    Duration::from_secs_f64(excess_ms.max(0.0) / 1000.0)
}

pub fn check(
    case: &Case,
    events: &[Event],
    limits: &Limits,
    server_of: impl Fn(&str) -> usize,
) -> Report {
    let mut report = Report::default();
    let beliefs = check_calls(case, events, limits, &mut report);
    check_mutual_exclusion(case, events, &beliefs, &mut report);
    check_validity(case, events, &beliefs, &mut report);
    match case.mode {
        Mode::Shard => check_fencing(case, events, &server_of, &mut report),
        Mode::Quorum => check_no_fencing(events, &mut report),
    }
    check_deletes_and_replacements(events, &beliefs, &mut report);
    if case.mode == Mode::Quorum {
        check_restart_rule(case, events, &beliefs, limits.max_lease, &mut report);
    }
    check_rollback(case, events, limits.rollback_window, &mut report);
    count_attempts(case, events, &mut report);
    report
}

/// Bounded calls and documented errors, liveness; returns every belief by key.
fn check_calls<'a>(
    case: &Case,
    events: &'a [Event],
    limits: &Limits,
    report: &mut Report,
) -> HashMap<&'a str, Vec<Belief>> {
    let mut beliefs: HashMap<&str, Vec<Belief>> = HashMap::new();
    // (client, key) → index of its open belief in `beliefs[key]`.
    let mut open: HashMap<(usize, &str), usize> = HashMap::new();
    for event in events {
        let Event::Call {
            client,
            op,
            key,
            ttl_ms,
            started,
            ended,
            outcome,
        } = event
        else {
            continue;
        };
        let limit = match op {
            Op::Acquire | Op::Liveness => limits.call_bound + limits.liveness_timeout,
            _ => limits.call_bound,
        };
        if *ended - *started > limit {
            report.violations.push(format!(
                "bounded calls: client c{client} {op:?} {key} took {:?} (bound {limit:?})",
                *ended - *started
            ));
        }
        match outcome {
            Outcome::Acquired {
                token, valid_until, ..
            } => {
                report.acquisitions += 1;
                let list = beliefs.entry(key).or_default();
                list.push(Belief {
                    client: *client,
                    token: token.clone(),
                    ttl_ms: *ttl_ms,
                    start: *ended,
                    end: *valid_until,
                    end_set_at: *ended,
                });
                open.insert((*client, key), list.len() - 1);
            }
            Outcome::Extended { valid_until } => {
                if let (Some(&i), Some(list)) = (
                    open.get(&(*client, key.as_str())),
                    beliefs.get_mut(key.as_str()),
                ) {
                    let mut belief = list[i].clone();
                    belief.end_set_at = *ended;
                    belief.ttl_ms = *ttl_ms;
                    if *ended <= list[i].end {
                        // The holder now counts on the extended lease.
                        list[i].end = *valid_until;
                        list[i].end_set_at = *ended;
                        list[i].ttl_ms = *ttl_ms;
                    } else {
                        // The old lease had run out before the extension's reply: a new belief.
                        belief.start = *ended;
                        belief.end = *valid_until;
                        list.push(belief);
                        open.insert((*client, key), list.len() - 1);
                    }
                }
            }
            Outcome::Error { code } => {
                let documented = [
                    ErrorCode::LockTimeout,
                    ErrorCode::LockLost,
                    ErrorCode::ConnectFailed,
                    ErrorCode::Timeout,
                    ErrorCode::ServerDown,
                    ErrorCode::Protocol,
                    ErrorCode::ServerError,
                ];
                let name = code.map_or("RUNTIME", ErrorCode::as_str);
                // Quorum mode adds NO_QUORUM (a missing majority); shard mode never reports it.
                let documented_here = |c: ErrorCode| match case.mode {
                    Mode::Shard => documented.contains(&c),
                    Mode::Quorum => documented.contains(&c) || c == ErrorCode::NoQuorum,
                };
                if !code.is_some_and(documented_here) {
                    report.violations.push(format!(
                        "documented errors: client c{client} {op:?} {key} failed with {name}"
                    ));
                }
                if *op == Op::Liveness {
                    report.violations.push(format!(
                        "liveness: client c{client} could not acquire {key} after faults stopped ({name}, waited {:?})",
                        *ended - *started
                    ));
                }
            }
            _ => {}
        }
        if *op == Op::Release
            && let Some(i) = open.remove(&(*client, key.as_str()))
            && let Some(list) = beliefs.get_mut(key.as_str())
        {
            list[i].end = list[i].end.min(*started);
        }
    }
    beliefs
}

/// When a server first stored each token, and when it lost each token without being asked.
struct ItemLives<'a> {
    /// token → when any server first stored it.
    stored: HashMap<&'a [u8], Duration>,
    /// (token, server) → when that server first stored it.
    stored_on: HashMap<(&'a [u8], usize), Duration>,
    /// token → (server, when, why) of every loss.
    dropped: HashMap<&'a [u8], Vec<(usize, Duration, Loss)>>,
}

impl<'a> ItemLives<'a> {
    fn new(events: &'a [Event]) -> Self {
        let mut lives = ItemLives {
            stored: HashMap::new(),
            stored_on: HashMap::new(),
            dropped: HashMap::new(),
        };
        for event in events {
            match event {
                Event::Store {
                    server, value, at, ..
                } => {
                    lives.stored.entry(value).or_insert(*at);
                    lives.stored_on.entry((value, *server)).or_insert(*at);
                }
                Event::Drop {
                    server,
                    value,
                    at,
                    cause,
                    ..
                } => {
                    lives
                        .dropped
                        .entry(value)
                        .or_default()
                        .push((*server, *at, *cause));
                }
                _ => {}
            }
        }
        lives
    }

    /// The server lost `token`'s item after storing it and no later than `by`.
    fn lost_before(&self, token: &str, by: Duration) -> bool {
        let token = token.as_bytes();
        let Some(&stored) = self.stored.get(token) else {
            return false;
        };
        self.dropped
            .get(token)
            .is_some_and(|drops| drops.iter().any(|&(_, at, _)| stored <= at && at <= by))
    }

    /// Some server evicted `first`'s item after storing it and before it stored `second`: only
    /// then may two majorities both be granted (a crash does not count: the restart rule keeps a
    /// restarted server out of every majority until the leases it held have expired).
    fn evicted_where_second_stored(&self, first: &str, second: &str) -> bool {
        let (first, second) = (first.as_bytes(), second.as_bytes());
        self.dropped.get(first).is_some_and(|drops| {
            drops.iter().any(|&(server, at, cause)| {
                cause == Loss::Evicted
                    && self
                        .stored_on
                        .get(&(first, server))
                        .is_some_and(|&stored| stored <= at)
                    && self
                        .stored_on
                        .get(&(second, server))
                        .is_some_and(|&stored| at <= stored)
            })
        })
    }
}

fn check_mutual_exclusion(
    case: &Case,
    events: &[Event],
    beliefs: &HashMap<&str, Vec<Belief>>,
    report: &mut Report,
) {
    let lives = ItemLives::new(events);
    let mut keys: Vec<&&str> = beliefs.keys().collect();
    keys.sort();
    for key in keys {
        let list = &beliefs[*key];
        // A belief that ended before it began (its acquire replied after its validity, or it was
        // released at once) covers no instant.
        let held: Vec<&Belief> = list.iter().filter(|b| b.start < b.end).collect();
        for (i, a) in held.iter().enumerate() {
            for b in &held[i + 1..] {
                // One lease believed twice (re-believed after a late extension) is no overlap;
                // two leases are, even when one client holds both.
                if a.token == b.token || !(a.start < b.end && b.start < a.end) {
                    continue;
                }
                let (first, second) = if a.start <= b.start { (a, b) } else { (b, a) };
                let second_stored = lives
                    .stored
                    .get(second.token.as_bytes())
                    .copied()
                    .unwrap_or(second.start);
                let lost = match case.mode {
                    Mode::Shard => lives.lost_before(&first.token, second_stored),
                    Mode::Quorum => lives.evicted_where_second_stored(&first.token, &second.token),
                };
                let overlap = first.end.min(second.end) - second.start;
                let excess = slow_clock_excess(case.drift[first.client], first.ttl_ms);
                if lost {
                    report.excuse(LOST_ITEM);
                } else if overlap <= excess {
                    report.excuse(SLOW_CLOCK);
                } else {
                    report.violations.push(format!(
                        "mutual exclusion: c{} held {key} {:?}..{:?} while c{} held it {:?}..{:?}",
                        first.client,
                        first.start,
                        first.end,
                        second.client,
                        second.start,
                        second.end
                    ));
                }
            }
        }
    }
}

/// Every belief's end is no later than the expiry of the item that backs it.
fn check_validity(
    case: &Case,
    events: &[Event],
    beliefs: &HashMap<&str, Vec<Belief>>,
    report: &mut Report,
) {
    // token → every (server, stored at, lives until) of an item holding it.
    type Stores<'a> = HashMap<&'a [u8], Vec<(usize, Duration, Option<Duration>)>>;
    let mut stores: Stores = HashMap::new();
    for event in events {
        if let Event::Store {
            server,
            value,
            lives_until,
            at,
            ..
        } = event
        {
            stores
                .entry(value)
                .or_default()
                .push((*server, *at, *lives_until));
        }
    }
    // Servers whose items must back a belief: its one server, or a majority of all.
    let needed = match case.mode {
        Mode::Shard => 1,
        Mode::Quorum => case.servers / 2 + 1,
    };
    let mut keys: Vec<&&str> = beliefs.keys().collect();
    keys.sort();
    for key in keys {
        for belief in &beliefs[*key] {
            // Per server, the store that set this belief's end there: the last one of its token
            // by the end of the call that set it.
            let mut lives: BTreeMap<usize, Option<Duration>> = BTreeMap::new();
            for &(server, at, lives_until) in stores
                .get(belief.token.as_bytes())
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                if at <= belief.end_set_at {
                    lives.insert(server, lives_until);
                }
            }
            if lives.len() < needed {
                report.violations.push(format!(
                    "validity: c{} believes it holds {key} but {} of the {needed} servers it needs stored its token",
                    belief.client,
                    lives.len()
                ));
                continue;
            }
            if lives.values().any(Option::is_none) {
                report.violations.push(format!(
                    "validity: c{}'s item for {key} was stored without expiry",
                    belief.client
                ));
                continue;
            }
            // The life the belief may count on: the `needed`-th longest.
            let mut ends: Vec<Duration> = lives.values().flatten().copied().collect();
            ends.sort_unstable_by(|a, b| b.cmp(a));
            let lives_until = ends[needed - 1];
            if belief.end <= lives_until {
                continue;
            }
            let excess = slow_clock_excess(case.drift[belief.client], belief.ttl_ms);
            if belief.end - lives_until <= excess {
                report.excuse(SLOW_CLOCK);
            } else {
                let whose = if needed == 1 {
                    "its item is".to_string()
                } else {
                    format!("its items on {needed} servers are")
                };
                report.violations.push(format!(
                    "validity: c{} believes it holds {key} until {:?}, but {whose} sure to live only until {lives_until:?}",
                    belief.client, belief.end
                ));
            }
        }
    }
}

fn check_fencing(
    case: &Case,
    events: &[Event],
    server_of: &impl Fn(&str) -> usize,
    report: &mut Report,
) {
    let restarts: Vec<(usize, Duration)> = case
        .faults
        .iter()
        .filter_map(|f| match f.kind {
            FaultKind::Crash { server } => Some((server, f.at + f.duration)),
            _ => None,
        })
        .collect();
    // Restarts that keep pid and start time. The start that keeps pid and start time happens at the first
    // (re)start of the server after the fault begins — its own end, or an overlapping crash's —
    // so anywhere in the fault's window.
    let reincarnations: Vec<(usize, Duration, Duration)> = case
        .faults
        .iter()
        .filter_map(|f| match f.kind {
            FaultKind::Reincarnate { server } => Some((server, f.at, f.at + f.duration)),
            _ => None,
        })
        .collect();
    let mut fences: BTreeMap<&str, Vec<(u128, Duration)>> = BTreeMap::new();
    for event in events {
        if let Event::Call {
            key,
            ended,
            outcome: Outcome::Acquired { fence, .. },
            ..
        } = event
        {
            fences.entry(key).or_default().push((*fence, *ended));
        }
    }
    for (key, list) in &fences {
        let server = server_of(key);
        for pair in list.windows(2) {
            let ((earlier, earlier_at), (later, at)) = (pair[0], pair[1]);
            if later > earlier {
                continue;
            }
            // Excused only if the key's server restarted in between, within the same second as
            // the start before it: then both processes report the same start time. (The first
            // process started an hour before the run: no restart shares its second.)
            let starts: Vec<Duration> = restarts
                .iter()
                .filter(|(s, _)| *s == server)
                .map(|(_, when)| *when)
                .collect();
            let same_second_restart = starts.iter().any(|&r| {
                let previous = starts.iter().copied().filter(|&p| p < r).max();
                r > earlier_at && r <= at && previous.is_some_and(|p| p.as_secs() == r.as_secs())
            });
            let reincarnated = reincarnations
                .iter()
                .any(|&(s, from, to)| s == server && from <= at && to >= earlier_at);
            if same_second_restart || reincarnated {
                report.excuse(SAME_SECOND_RESTART);
            } else {
                report.violations.push(format!(
                    "fencing: {key} acquired at {at:?} with token {later} after token {earlier}"
                ));
            }
        }
    }

    let mut highest: HashMap<&str, u128> = HashMap::new();
    for event in events {
        if let Event::Write {
            client,
            key,
            fence,
            accepted,
            at,
        } = event
        {
            let top = highest.entry(key).or_insert(0);
            if *accepted && *fence < *top {
                report.violations.push(format!(
                    "fencing: the resource accepted c{client}'s token {fence} for {key} at {at:?} after {top}"
                ));
            }
            if *accepted {
                *top = (*top).max(*fence);
            } else {
                report.stale_writes_rejected += 1;
            }
        }
    }
}

/// Every delete or compare-and-set touched only an item that the server had stored for the
/// client that sent it, an extend kept the token, and no delete removed a lease while it was
/// believed held.
fn check_deletes_and_replacements(
    events: &[Event],
    beliefs: &HashMap<&str, Vec<Belief>>,
    report: &mut Report,
) {
    let mut live: HashMap<&str, Vec<&Belief>> = HashMap::new();
    for belief in beliefs.values().flatten() {
        live.entry(belief.token.as_str()).or_default().push(belief);
    }
    // token → the peer whose request stored it, whether or not that peer learnt the outcome.
    let mut stored_by: HashMap<&[u8], &str> = HashMap::new();
    for event in events {
        if let Event::Store { peer, value, .. } = event {
            stored_by.entry(value).or_insert(peer);
        }
    }
    for event in events {
        let (server, peer, key, token, at, what) = match event {
            Event::Delete {
                server,
                peer,
                key,
                value,
                at,
            } => (server, peer, key, value, at, "deleted"),
            Event::Replace {
                server,
                peer,
                key,
                old,
                new,
                at,
            } => {
                if new != old {
                    report.violations.push(format!(
                        "extend safety: {peer} changed the owner token of a lease"
                    ));
                }
                (server, peer, key, old, at, "extended")
            }
            _ => continue,
        };
        match stored_by.get(token.as_slice()) {
            Some(holder) if *holder == peer => {}
            holder => report.violations.push(format!(
                "{what} safety: {peer} {what} {} on mc{server} at {at:?}, an item stored for {}",
                String::from_utf8_lossy(key),
                holder.copied().unwrap_or("nobody")
            )),
        }
        let token = String::from_utf8_lossy(token);
        if matches!(event, Event::Delete { .. })
            && let Some(holder) = live
                .get(token.as_ref())
                .and_then(|list| list.iter().find(|b| b.start <= *at && *at < b.end))
        {
            report.violations.push(format!(
                "release safety: {peer} deleted {} on mc{server} at {at:?} while c{} held that lease",
                String::from_utf8_lossy(key),
                holder.client
            ));
        }
    }
}

/// Quorum mode offers no fencing tokens: every lease's token is zero, so that no caller can
/// mistake one server's CAS for an order across the cluster.
fn check_no_fencing(events: &[Event], report: &mut Report) {
    for event in events {
        if let Event::Call {
            client,
            key,
            ended,
            outcome: Outcome::Acquired { fence, .. },
            ..
        } = event
            && *fence != 0
        {
            report.violations.push(format!(
                "fencing: c{client} acquired {key} at {ended:?} in quorum mode with fencing token {fence}, not 0"
            ));
        }
    }
}

/// Does `fault` explain why `peer` could not take back, within `window` after `at`, what it
/// stored on `server` at `at`? Only faults that cut or garble the exchange between them do (a
/// lost reply is matched to the moment it happened; a crash or an eviction takes the item
/// itself, and a pause acts only between calls).
fn cuts_rollback(
    fault: &crate::schedule::Fault,
    peer: &str,
    server: usize,
    at: Duration,
    window: Duration,
) -> bool {
    let cuts = matches!(
        fault.kind,
        FaultKind::Partition { .. }
            | FaultKind::Isolate { .. }
            | FaultKind::Hold { .. }
            | FaultKind::Delay { .. }
            | FaultKind::Garbage { .. }
    );
    let near = fault.at <= at + window && at <= fault.at + fault.duration;
    let on_server = fault.kind.server() == Some(server);
    let on_client = fault.kind.client().is_none_or(|c| format!("c{c}") == peer);
    cuts && near && on_server && on_client
}

/// Items of acquires that did not win are taken back by the client that stored them.
fn check_rollback(case: &Case, events: &[Event], window: Duration, report: &mut Report) {
    let won: std::collections::HashSet<&[u8]> = events
        .iter()
        .filter_map(|e| match e {
            Event::Call {
                outcome: Outcome::Acquired { token, .. },
                ..
            } => Some(token.as_bytes()),
            _ => None,
        })
        .collect();
    // (token, server) of every delete (by anyone else it is release safety's violation, not
    // this one's); (token, server) → when the server lost it.
    let mut deleted: std::collections::HashSet<(&[u8], usize)> = std::collections::HashSet::new();
    let mut lost_at: HashMap<(&[u8], usize), Vec<Duration>> = HashMap::new();
    let mut lost_replies: Vec<(usize, &str, Duration)> = Vec::new();
    for event in events {
        match event {
            Event::Delete { server, value, .. } => {
                deleted.insert((value, *server));
            }
            Event::Drop {
                server, value, at, ..
            } => lost_at.entry((value, *server)).or_default().push(*at),
            Event::LostReply { server, peer, at } => lost_replies.push((*server, peer, *at)),
            _ => {}
        }
    }
    for event in events {
        let Event::Store {
            server,
            peer,
            key,
            value,
            at,
            ..
        } = event
        else {
            continue;
        };
        // Lock keys only: not the incarnation item (NUL-framed) or the authentication set.
        let lock_key = !key.starts_with(b"\0") && !key.starts_with(b"memlock:");
        if !lock_key || won.contains(value.as_slice()) {
            continue;
        }
        let place = (value.as_slice(), *server);
        // Taken back, or taken by the server itself (crash, eviction) before the client could.
        if deleted.contains(&place)
            || lost_at
                .get(&place)
                .is_some_and(|times| times.iter().any(|&t| *at <= t && t <= *at + window))
        {
            continue;
        }
        let reply_lost = lost_replies
            .iter()
            .any(|&(s, p, t)| s == *server && p == peer && *at <= t + window && t <= *at + window);
        if reply_lost
            || case
                .faults
                .iter()
                .any(|f| cuts_rollback(f, peer, *server, *at, window))
        {
            report.excuse(FAULT_NEAR_ROLLBACK);
            continue;
        }
        report.violations.push(format!(
            "rollback: {peer}'s acquire of {} did not win, but its item stored at {at:?} stayed on mc{server}",
            String::from_utf8_lossy(key)
        ));
    }
}

/// Quorum mode's restart rule, checked directly: every belief is backed by a majority of
/// servers whose process had run `max_lease` when it stored the lease's item (a process that
/// restarted since may have lost a lease it granted, which may still be believed).
fn check_restart_rule(
    case: &Case,
    events: &[Event],
    beliefs: &HashMap<&str, Vec<Belief>>,
    max_lease: Duration,
    report: &mut Report,
) {
    let mut restarts: HashMap<usize, Vec<Duration>> = HashMap::new();
    let mut stores: HashMap<&[u8], Vec<(usize, Duration)>> = HashMap::new();
    for event in events {
        match event {
            Event::Restart { server, at } => restarts.entry(*server).or_default().push(*at),
            Event::Store {
                server, value, at, ..
            } => stores.entry(value).or_default().push((*server, *at)),
            _ => {}
        }
    }
    // The process on `server` at `at` had run max_lease (the first ones started an hour early).
    let old_enough = |server: usize, at: Duration| {
        restarts
            .get(&server)
            .and_then(|list| list.iter().copied().filter(|&r| r <= at).max())
            .is_none_or(|started| at - started >= max_lease)
    };
    let needed = case.servers / 2 + 1;
    let mut keys: Vec<&&str> = beliefs.keys().collect();
    keys.sort();
    for key in keys {
        for belief in beliefs[*key].iter().filter(|b| b.start < b.end) {
            let mut counted: Vec<usize> = stores
                .get(belief.token.as_bytes())
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter(|&&(server, at)| at <= belief.end_set_at && old_enough(server, at))
                .map(|&(server, _)| server)
                .collect();
            counted.sort_unstable();
            counted.dedup();
            let stored_on = stores
                .get(belief.token.as_bytes())
                .map(|list| {
                    let mut servers: Vec<usize> = list
                        .iter()
                        .filter(|&&(_, at)| at <= belief.end_set_at)
                        .map(|&(server, _)| server)
                        .collect();
                    servers.sort_unstable();
                    servers.dedup();
                    servers.len()
                })
                .unwrap_or_default();
            // Stored on a minority at all is validity's violation; this one is a majority that
            // needed a young server.
            if counted.len() < needed && stored_on >= needed {
                report.violations.push(format!(
                    "restart rule: c{} believes it holds {key} from {:?} with {} of the {needed} servers it needs having run max_lease ({max_lease:?})",
                    belief.client,
                    belief.start,
                    counted.len()
                ));
            }
        }
    }
}

/// How often an acquire succeeded, by the faults active when it began.
fn count_attempts(case: &Case, events: &[Event], report: &mut Report) {
    for event in events {
        let Event::Call {
            op: Op::TryAcquire | Op::Acquire,
            started,
            outcome,
            ..
        } = event
        else {
            continue;
        };
        let mut kinds: Vec<&'static str> = case
            .faults
            .iter()
            .filter(|f| f.at <= *started && *started < f.at + f.duration)
            .map(|f| f.kind.name())
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        if kinds.is_empty() {
            kinds.push("none");
        }
        for kind in kinds {
            let entry = report.attempts.entry(kind).or_default();
            entry.0 += 1;
            if matches!(outcome, Outcome::Acquired { .. }) {
                entry.1 += 1;
            }
        }
    }
}

#[cfg(test)]
mod quorum_tests;
#[cfg(test)]
mod tests;
