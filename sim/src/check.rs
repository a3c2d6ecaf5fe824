//! The properties, checked on a recorded history.
//!
//! - **Mutual exclusion**: no two clients believe they hold the same key at the same simulated
//!   instant. A client believes from the reply of a successful acquire until the earlier of its
//!   lease's valid-until and the start of its release. Stated assumption: the key's item was not
//!   lost (server crash or eviction) during the earlier lease, and the earlier holder's clock
//!   drift is within the lock's allowance (1 %); a violation outside that is excused and counted.
//! - **Release safety**: every item a server removed on a delete held an owner token issued to
//!   the client that sent the delete (tokens of acquires whose outcome the client never learned
//!   are unattributed and allowed).
//! - **Liveness**: after the faults stop, every client's final blocking acquire succeeds.
//! - **Bounded calls**: no call lasts longer than its bound in simulated time, and every error is
//!   one the README documents for these conditions.

use std::collections::HashMap;
use std::time::Duration;

use crate::history::{Event, Op, Outcome};
use crate::schedule::Case;

/// The lock's drift allowance covers |drift| up to this.
pub const DRIFT_ALLOWANCE: f64 = 0.01;

#[derive(Debug, Default)]
pub struct Report {
    pub violations: Vec<String>,
    /// Overlaps excused by a stated assumption (item lost, drift beyond allowance).
    pub excused: usize,
    pub acquisitions: usize,
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
    let mut owner: HashMap<&str, usize> = HashMap::new();
    let losses: Vec<(usize, Duration, Duration)> = case
        .faults
        .iter()
        .filter_map(|f| f.kind.loses_items().map(|s| (s, f.at, f.at + f.duration)))
        .collect();

    for (i, event) in events.iter().enumerate() {
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
            Outcome::Acquired { token, valid_until } => {
                report.acquisitions += 1;
                owner.insert(token, *client);
                // Belief ends at valid-until, or at the start of this client's next release of it.
                let released = events[i + 1..].iter().find_map(|e| match e {
                    Event::Call {
                        client: c,
                        op: Op::Release,
                        key: k,
                        started,
                        ..
                    } if c == client && k == key => Some(*started),
                    _ => None,
                });
                let end = released.map_or(*valid_until, |r| r.min(*valid_until));
                beliefs.entry(key).or_default().push(Belief {
                    client: *client,
                    start: *ended,
                    end,
                });
            }
            Outcome::Error { code } => {
                let documented = [
                    "LOCK_TIMEOUT",
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

    for event in events {
        let Event::Removal {
            server,
            peer,
            key,
            value,
            at,
        } = event
        else {
            continue;
        };
        let token = String::from_utf8_lossy(value);
        if let Some(&holder) = owner.get(token.as_ref())
            && format!("c{holder}") != *peer
        {
            report.violations.push(format!(
                "release safety: {peer} deleted {} on mc{server} at {at:?}, a lease held by c{holder}",
                String::from_utf8_lossy(key)
            ));
        }
    }
    report
}
