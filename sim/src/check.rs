//! The properties, checked on a recorded history.
//!
//! - **Mutual exclusion**: no two clients believe they hold the same key at the same simulated
//!   instant. A client believes from the reply of a successful acquire until the earlier of its
//!   lease's valid-until and the start of its release. Stated assumption: the key's item was not
//!   lost (server crash or eviction) during the earlier lease, and the earlier holder's clock
//!   drift is within the lock's allowance (1 %); a violation outside that is excused and counted.
//! - **Release and extend safety**: every item a server deleted, or replaced by compare-and-set
//!   (an extend), held an owner token issued to the client that sent the command, and an extend
//!   stored the same token back (tokens of acquires whose outcome the client never learned are
//!   unattributed and allowed).
//! - **Fencing**: per key, the fencing tokens of successive acquisitions strictly increase, and the
//!   guarded resource never accepted a token below one it had accepted. Stated assumption: the
//!   key's server did not start twice within one second (memcached's start time has 1 s
//!   resolution); a decrease across such a restart, or across a `reincarnate` fault (which keeps
//!   the start time on purpose), is excused and counted. Release and extend safety have no such
//!   excuse: they must hold across `reincarnate` too.
//! - **Liveness**: after the faults stop, every client's final blocking acquire succeeds.
//! - **Bounded calls**: no call lasts longer than its bound in simulated time, and every error is
//!   one the README documents for these conditions.

use std::collections::HashMap;
use std::time::Duration;

use crate::history::{Event, Op, Outcome};
use crate::schedule::{Case, FaultKind};

/// The lock's drift allowance covers |drift| up to this.
pub const DRIFT_ALLOWANCE: f64 = 0.01;

#[derive(Debug, Default)]
pub struct Report {
    pub violations: Vec<String>,
    /// Overlaps excused by a stated assumption (item lost, drift beyond allowance).
    pub excused: usize,
    pub acquisitions: usize,
    /// Writes by stale holders that the guarded resource rejected thanks to fencing tokens.
    pub stale_writes_rejected: usize,
}

/// Longest a single call may take: connect + stats + command, possibly a token lookup, resend
/// and orphan cleanup, each bounded by the configured timeouts.
pub fn call_bound(op_timeout: Duration, reconnect: Duration) -> Duration {
    (reconnect + op_timeout * 2) * 6
}

pub struct Limits {
    pub call_bound: Duration,
    pub liveness_timeout: Duration,
}

struct Belief {
    client: usize,
    start: Duration,
    end: Duration,
}

pub fn check(
    case: &Case,
    events: &[Event],
    limits: &Limits,
    server_of: impl Fn(&str) -> usize,
) -> Report {
    let mut report = Report::default();
    let mut beliefs: HashMap<&str, Vec<Belief>> = HashMap::new();
    // (client, key) → index of its open belief in `beliefs[key]`.
    let mut open: HashMap<(usize, &str), usize> = HashMap::new();
    let mut owner: HashMap<&str, usize> = HashMap::new();
    let mut fences: HashMap<&str, Vec<(u128, Duration)>> = HashMap::new();
    let losses: Vec<(usize, Duration, Duration)> = case
        .faults
        .iter()
        .filter_map(|f| f.kind.loses_items().map(|s| (s, f.at, f.at + f.duration)))
        .collect();
    let restarts: Vec<(usize, Duration)> = case
        .faults
        .iter()
        .filter_map(|f| match f.kind {
            FaultKind::Crash { server } => Some((server, f.at + f.duration)),
            _ => None,
        })
        .collect();
    // Restarts that keep pid and start time: the fencing assumption does not hold across them.
    // The identity-keeping start happens at the first (re)start of the server after the fault
    // begins — its own end, or an overlapping crash's — so anywhere in the fault's window.
    let reincarnations: Vec<(usize, Duration, Duration)> = case
        .faults
        .iter()
        .filter_map(|f| match f.kind {
            FaultKind::Reincarnate { server } => Some((server, f.at, f.at + f.duration)),
            _ => None,
        })
        .collect();

    for event in events {
        let Event::Call {
            client,
            op,
            key,
            started,
            ended,
            outcome,
            ..
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
                token,
                valid_until,
                fence,
            } => {
                report.acquisitions += 1;
                owner.insert(token, *client);
                fences.entry(key).or_default().push((*fence, *ended));
                let list = beliefs.entry(key).or_default();
                list.push(Belief {
                    client: *client,
                    start: *ended,
                    end: *valid_until,
                });
                open.insert((*client, key), list.len() - 1);
            }
            Outcome::Extended { valid_until } => {
                if let (Some(&i), Some(list)) = (
                    open.get(&(*client, key.as_str())),
                    beliefs.get_mut(key.as_str()),
                ) {
                    if *ended <= list[i].end {
                        list[i].end = (*valid_until).max(list[i].end);
                    } else {
                        // The old lease had run out before the extension's reply: a new belief.
                        list.push(Belief {
                            client: *client,
                            start: *ended,
                            end: *valid_until,
                        });
                        open.insert((*client, key), list.len() - 1);
                    }
                }
            }
            Outcome::Error { code } => {
                let documented = [
                    "LOCK_TIMEOUT",
                    "LOCK_LOST",
                    "CONNECT_FAILED",
                    "TIMEOUT",
                    "SERVER_DOWN",
                    "PROTOCOL_ERROR",
                    "SERVER_ERROR",
                ];
                if !documented.contains(&code.as_str()) {
                    report.violations.push(format!(
                        "documented errors: client c{client} {op:?} {key} failed with {code}"
                    ));
                }
                if *op == Op::Liveness {
                    report.violations.push(format!(
                        "liveness: client c{client} could not acquire {key} after faults stopped ({code}, waited {:?})",
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

    for (key, list) in &beliefs {
        let server = server_of(key);
        for (i, a) in list.iter().enumerate() {
            for b in &list[i + 1..] {
                if a.client == b.client || !(a.start < b.end && b.start < a.end) {
                    continue;
                }
                let (first, second) = if a.start <= b.start { (a, b) } else { (b, a) };
                let lost = losses
                    .iter()
                    .any(|&(s, from, to)| s == server && from <= second.start && to >= first.start);
                let drifted = case.drift[first.client].abs() > DRIFT_ALLOWANCE;
                if lost || drifted {
                    report.excused += 1;
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

    for (key, list) in &fences {
        let server = server_of(key);
        for pair in list.windows(2) {
            let ((earlier, _), (later, at)) = (pair[0], pair[1]);
            if later > earlier {
                continue;
            }
            // Excused only if the key's server restarted in between, within the same second as
            // the start before it: then both processes report the same start time.
            let starts: Vec<Duration> = std::iter::once(Duration::ZERO)
                .chain(
                    restarts
                        .iter()
                        .filter(|(s, _)| *s == server)
                        .map(|(_, when)| *when),
                )
                .collect();
            let same_second_restart = starts.iter().any(|&r| {
                let previous = starts.iter().copied().filter(|&p| p < r).max();
                r > pair[0].1 && r <= at && previous.is_some_and(|p| p.as_secs() == r.as_secs())
            });
            let reincarnated = reincarnations
                .iter()
                .any(|&(s, from, to)| s == server && from <= at && to >= pair[0].1);
            if same_second_restart || reincarnated {
                report.excused += 1;
            } else {
                report.violations.push(format!(
                    "fencing: {key} acquired at {at:?} with token {later} after token {earlier}"
                ));
            }
        }
    }

    let mut highest: HashMap<&str, u128> = HashMap::new();
    for event in events {
        match event {
            Event::Write {
                client,
                key,
                fence,
                accepted,
                at,
            } => {
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
            Event::Removal {
                server,
                peer,
                key,
                value,
                replaced_by,
                at,
            } => {
                let token = String::from_utf8_lossy(value);
                let what = if replaced_by.is_some() {
                    "extended"
                } else {
                    "deleted"
                };
                if let Some(&holder) = owner.get(token.as_ref())
                    && format!("c{holder}") != *peer
                {
                    report.violations.push(format!(
                        "{what} safety: {peer} {what} {} on mc{server} at {at:?}, a lease held by c{holder}",
                        String::from_utf8_lossy(key)
                    ));
                }
                if let Some(new) = replaced_by
                    && new != value
                {
                    report.violations.push(format!(
                        "extend safety: {peer} changed the owner token of a lease"
                    ));
                }
            }
            _ => {}
        }
    }
    report
}
